from collections.abc import AsyncIterator

import pytest

from tests.harness import Running, running, settings_for


@pytest.fixture(scope="module")
async def malipo(database_url: str) -> AsyncIterator[Running]:
    async with running(settings_for(database_url)) as service:
        yield service
