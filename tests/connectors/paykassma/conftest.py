"""Fixtures for the Paykassma connector against its fake over real HTTP (127.0.0.1 only)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from paykassma_support import World, open_world


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with open_world() as opened:
        yield opened
