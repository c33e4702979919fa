"""Shared by the fault tests: the gateway fake whose books count the provider's charges."""

from collections.abc import AsyncIterator

import pytest

from malipo.sandbox.gateway import GatewayFake


@pytest.fixture
async def fake() -> AsyncIterator[GatewayFake]:
    server = GatewayFake(complete_after_s=0.1)
    await server.start()
    yield server
    await server.stop()
