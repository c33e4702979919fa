# pyright: basic
"""The database stopped and started again while creates flow (a fault to inject: see
tests/reliability/README.md).

`malipo serve` runs as a real process against a PostgreSQL of this test's own (the session's
shared server is never stopped), with the gateway fake in this process keeping the provider's
books. The server is stopped twice under load, `-m fast` (a clean shutdown) and `-m immediate`
(a crash, recovered from the WAL), for 3 s each, and started again; the service is not."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from malipo.sandbox.gateway import GatewayFake
from tests.reliability.ledger import Call, check_ledger, check_same_key_retries, create_call
from tests.reliability.pgserver import OwnPostgres
from tests.reliability.process import create_database, gateway_config, serve

pytestmark = pytest.mark.reliability

DEADLINE_S = 3.0
OUTAGE_S = 3.0


@pytest.fixture
async def own_pg() -> AsyncIterator[OwnPostgres]:
    pg = await OwnPostgres.start()
    try:
        yield pg
    finally:
        await pg.close()


async def test_database_stopped_and_started_while_creates_flow(
        own_pg: OwnPostgres, fake: GatewayFake, tmp_path: Path) -> None:
    # The server dies with the test: nothing to drop.
    url = await create_database(own_pg.dsn)
    served = await serve(url, gateway_config(tmp_path / "malipo.toml", fake.base_url),
                         tmp_path)
    channel = served.channel()
    stub = served.stub(channel)
    try:
        calls: list[Call] = []
        flowing = True

        async def client(n: int) -> None:
            while flowing:
                calls.append(await create_call(stub, f"pgstop-{n}-{uuid.uuid4()}", DEADLINE_S))
                await asyncio.sleep(0.05)

        clients = [asyncio.create_task(client(n)) for n in range(3)]
        outages: list[tuple[str, float, float, float, float]] = []
        for mode in ("fast", "immediate"):
            await asyncio.sleep(2.5)  # flowing (again) before the stop
            stopping = time.monotonic()
            await own_pg.stop(mode)
            down = time.monotonic()
            await asyncio.sleep(OUTAGE_S)
            starting = time.monotonic()
            await own_pg.restart()
            outages.append((mode, stopping, down, starting, time.monotonic()))
        await asyncio.sleep(2.5)
        flowing = False
        await asyncio.gather(*clients)
        assert served.proc.returncode is None, "the service died with its database"

        # Only success or a retryable refusal that says when to retry; nothing hung.
        codes = {c.code for c in calls}
        assert codes <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}, \
            [c for c in calls if c.code not in (grpc.StatusCode.OK,
                                                grpc.StatusCode.UNAVAILABLE)][:5]
        assert all(c.retry_info for c in calls if c.code is grpc.StatusCode.UNAVAILABLE)
        assert max(c.ended - c.started for c in calls) < DEADLINE_S + 0.5
        next_stop = [o[1] for o in outages[1:]] + [float("inf")]
        for (mode, _, down, starting, up), until in zip(outages, next_stop, strict=True):
            during = [c for c in calls if c.started >= down and c.ended <= starting]
            assert during, f"no call fell in the {mode} outage"
            assert {c.code for c in during} == {grpc.StatusCode.UNAVAILABLE}, (mode, during)
            # Back without restarting the service: the pool reconnects by itself.
            after = [c for c in calls if up + 0.5 <= c.started and c.ended <= until]
            assert after and all(c.code is grpc.StatusCode.OK for c in after), \
                (mode, [c for c in after if c.code is not grpc.StatusCode.OK][:5])

        # A retry with the same key always succeeds, with the payment of the first OK.
        retried = await check_same_key_retries(stub, calls)
        await check_ledger(url, retried, fake)
    finally:
        served.term()
        await served.wait()
        await channel.close()
