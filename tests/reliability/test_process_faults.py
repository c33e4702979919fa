# pyright: basic
"""The real `malipo serve` process killed or stopped at the worst moments (items 6 and 19).

A fake gateway runs in the test process behind a fault proxy, so the provider's books survive
the service's death and show how many charges it really made."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from malipo.payments.v1 import payment_pb2, payment_service_pb2
from malipo.sandbox.gateway import GatewayFake
from tests.harness import auth, create_request
from tests.reliability.faultproxy import FaultProxy
from tests.reliability.process import fresh_database, gateway_config, serve, status_of

pytestmark = pytest.mark.reliability
pb = payment_service_pb2


@pytest.fixture
async def database_url(server_dsn: str) -> AsyncIterator[str]:
    """One database per test (not per module): every GatewayFake numbers its transactions from
    the same start, so in a shared database the second test's payment got the first one's
    provider reference and was flagged REFERENCE_REUSED, staying PENDING (the old xfails)."""
    async with fresh_database(server_dsn) as url:
        yield url


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[GatewayFake, FaultProxy]]:
    fake = GatewayFake(complete_after_s=0.1)
    await fake.start()
    port = int(fake.base_url.rsplit(":", 1)[1])
    proxy = FaultProxy("127.0.0.1", port)
    await proxy.start()
    yield fake, proxy
    await proxy.stop()
    await fake.stop()


def _request(key: str) -> pb.CreatePaymentRequest:
    return create_request(key, provider="gateway", channel="2390", phone="+254712345678",
                          amount=10000)


def _creates(fake: GatewayFake) -> int:
    return sum(1 for c in fake.calls if c.path.endswith("/payment_c2b"))


async def _pending_row(database_url: str, key: str) -> str:
    import asyncpg
    conn = await asyncpg.connect(database_url)
    try:
        for _ in range(200):
            found = await conn.fetchval(
                "SELECT id FROM payments WHERE tenant = 'acme' AND idempotency_key = $1", key)
            if found:
                return str(found)
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    raise AssertionError("payment never stored")


async def _until(predicate, seconds: float = 20.0) -> None:
    for _ in range(int(seconds / 0.1)):
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def _kill_and_resume(database_url: str, tmp_path: Path, fake: GatewayFake,
                           proxy: FaultProxy, *, answer_lost: bool) -> None:
    config = gateway_config(tmp_path / "malipo.toml", f"http://127.0.0.1:{proxy.port}")
    key = f"kill-{uuid.uuid4()}"
    if answer_lost:
        proxy.hold_responses = True     # the provider acts, its answer never arrives
    else:
        proxy.mode = "blackhole"        # accepted here, the provider never hears of it
    first = await serve(database_url, config, tmp_path, name="first")
    channel = first.channel()
    call = asyncio.ensure_future(first.stub(channel).CreatePayment(
        _request(key), metadata=auth(), timeout=20))
    payment_id = await _pending_row(database_url, key)
    if answer_lost:
        await _until(lambda: asyncio.sleep(0, len(fake.orders) == 1))
    else:
        await asyncio.sleep(0.5)
        assert fake.orders == {}
    first.kill()
    assert await first.wait() != 0
    with pytest.raises(grpc.aio.AioRpcError):
        await call
    await channel.close()
    assert await status_of(database_url, payment_id) == "PENDING"

    proxy.mode, proxy.hold_responses = "pass", False
    second = await serve(database_url, config, tmp_path, http_port=int(
        first.http_address.rsplit(":", 1)[1]), name="second")
    try:
        try:
            await _until(lambda: _is(database_url, payment_id, "SUCCEEDED"))
        except AssertionError:
            raise AssertionError(await _row(database_url, payment_id)) from None
        channel = second.channel()
        replay = await second.stub(channel).CreatePayment(_request(key), metadata=auth(),
                                                          timeout=10)
        assert replay.payment.id == payment_id
        assert replay.payment.status == payment_pb2.STATUS_SUCCEEDED
        await channel.close()
    finally:
        second.term()
        await second.wait()
    # Exactly one charge at the provider: on resume the service asks the gateway about its
    # own id first, finds the order the dead process sent, and never sends it again.
    assert list(fake.orders) == [payment_id]
    assert _creates(fake) == 1


async def _is(database_url: str, payment_id: str, status: str) -> bool:
    return await status_of(database_url, payment_id) == status


async def test_sigkill_between_accept_and_provider_call_completes_exactly_once(
        database_url: str, tmp_path: Path, gateway: tuple[GatewayFake, FaultProxy]) -> None:
    await _kill_and_resume(database_url, tmp_path, *gateway, answer_lost=False)


async def test_sigkill_between_provider_answer_and_commit_completes_exactly_once(
        database_url: str, tmp_path: Path, gateway: tuple[GatewayFake, FaultProxy]) -> None:
    await _kill_and_resume(database_url, tmp_path, *gateway, answer_lost=True)


async def test_sigterm_drains_in_flight_rpcs_and_ends_streams_cleanly(
        database_url: str, tmp_path: Path, gateway: tuple[GatewayFake, FaultProxy]) -> None:
    fake, proxy = gateway
    proxy.latency_s = 1.0                   # the provider call is in flight when SIGTERM lands
    config = gateway_config(tmp_path / "malipo.toml", f"http://127.0.0.1:{proxy.port}")
    served = await serve(database_url, config, tmp_path)
    channel = served.channel()
    stub = served.stub(channel)
    stream = stub.WatchStatus(pb.WatchStatusRequest(), metadata=auth())
    call = asyncio.ensure_future(stub.CreatePayment(_request(f"term-{uuid.uuid4()}"),
                                                    metadata=auth(), timeout=20))
    await _until(lambda: asyncio.sleep(0, proxy.connections > 0))
    served.term()
    answer = await call                     # drained: the in-flight call got its answer
    assert answer.payment.id
    assert len(fake.orders) <= 1            # never a second charge
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        async for _ in stream:
            pass
    # A status the client resumes from (with its last sequence), not a torn connection.
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    assert await served.wait() == 0
    assert b"draining in-flight calls and streams" in served.log_path.read_bytes()
    await channel.close()
    stored = await status_of(database_url, answer.payment.id)
    assert stored == payment_pb2.Status.Name(answer.payment.status).removeprefix("STATUS_") or \
        stored == "SUCCEEDED"


async def _row(database_url: str, payment_id: str) -> str:
    import asyncpg
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow("SELECT status, submit_state, needs_review, review_reason, "
                                  "next_poll_at, claimed_until, poll_attempts, now() AS now "
                                  "FROM payments WHERE id = $1",
                                  payment_id)
        return repr(dict(row or {}))
    finally:
        await conn.close()
