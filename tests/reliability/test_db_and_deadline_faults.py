# pyright: basic
"""Item 7 (a database connection killed mid-transaction) and item 17 (the caller's deadline
bounds the provider call), against the real service on real sockets."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from malipo.config import AccountConfig, PolicyConfig
from malipo.payments.v1 import payment_pb2, payment_service_pb2
from malipo.sandbox.fake_provider import CallbackMode, ResponseFault
from malipo.sandbox.gateway import GatewayFake
from tests.harness import Running, auth, create_request, running, settings_for

pb = payment_service_pb2
pytestmark = pytest.mark.reliability


def has_retry_info(err: grpc.aio.AioRpcError) -> bool:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    return status is not None and any(
        d.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for d in status.details)


async def all_transitions(pool: asyncpg.Pool, payment_id: str) -> list[str]:
    """Every status event committed for the payment (relayed or still in the outbox)."""
    rows = await pool.fetch(
        "SELECT new_status, occurred_at FROM events WHERE payment_id = $1 UNION "
        "SELECT payload->>'new_status', (payload->>'occurred_at')::timestamptz FROM outbox "
        "WHERE payload->>'payment_id' = $1 ORDER BY 2", payment_id)
    return [r[0] for r in rows]


# --- item 7 ----------------------------------------------------------------------------------

@pytest.fixture
async def simulator(database_url: str) -> AsyncIterator[Running]:
    # Function scope: a service left running would have its reconciler claim the next
    # test's gateway payments it has no account for (see README, item 17).
    async with running(settings_for(database_url)) as service:
        yield service


async def _kill_backends(database_url: str, stop: asyncio.Event) -> int:
    """Terminate every other backend of this database (the service's pool) again and again."""
    killer = await asyncpg.connect(database_url)
    killed = 0
    try:
        while not stop.is_set():
            killed += await killer.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()")
            await asyncio.sleep(0.005)
    finally:
        await killer.close()
    return killed


async def test_killed_db_connections_leave_no_partial_state_and_retries_succeed(
        simulator: Running, database_url: str) -> None:
    keys = [f"dbkill-{uuid.uuid4()}" for _ in range(40)]
    stop = asyncio.Event()
    killer = asyncio.create_task(_kill_backends(database_url, stop))
    codes: list[grpc.StatusCode] = []

    async def one(k: str) -> None:
        try:
            await simulator.stub.CreatePayment(create_request(k), metadata=auth(), timeout=5)
            codes.append(grpc.StatusCode.OK)
        except grpc.aio.AioRpcError as err:
            codes.append(err.code())
            if err.code() == grpc.StatusCode.UNAVAILABLE and not has_retry_info(err):
                pytest.fail(f"UNAVAILABLE without RetryInfo: {err.details()}")

    await asyncio.gather(*(one(k) for k in keys))
    stop.set()
    killed = await killer
    assert killed > 0
    # Retryable or success: never INTERNAL, never a lost answer.
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}, codes
    assert grpc.StatusCode.UNAVAILABLE in codes  # the fault really hit requests

    # Every key retried with the same body succeeds: one payment, one provider call each.
    ids: dict[str, str] = {}
    for k in keys:
        for attempt in range(20):
            try:
                got = await simulator.stub.CreatePayment(create_request(k), metadata=auth(),
                                                         timeout=5)
                ids[k] = got.payment.id
                break
            except grpc.aio.AioRpcError as err:
                assert simulator.app.pool is not None
                row = await simulator.app.pool.fetchrow(
                    "SELECT * FROM payments WHERE idempotency_key = $1", k)
                if err.code() != grpc.StatusCode.UNAVAILABLE or attempt == 19:
                    pytest.fail(f"retry of {k}: {err.code()} {err.details()}; row {row}")
                await asyncio.sleep(0.1)
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT idempotency_key, count(*) AS n FROM payments WHERE idempotency_key ="
            " ANY($1::text[]) GROUP BY idempotency_key", keys)
        assert {r["idempotency_key"]: r["n"] for r in rows} == dict.fromkeys(keys, 1)
        # No key without its payment, no payment without its first event.
        orphans = await conn.fetchval(
            "SELECT count(*) FROM idempotency_keys k WHERE k.key = ANY($1::text[])"
            " AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.id = k.resource_id)", keys)
        assert orphans == 0
        silent = await conn.fetchval(
            "SELECT count(*) FROM payments p WHERE p.idempotency_key = ANY($1::text[])"
            " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.payment_id = p.id)"
            " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.payload->>'payment_id' = p.id)",
            keys)
        assert silent == 0
    finally:
        await conn.close()
    connector = simulator.connector("simulator")
    assert {k: connector.calls_for(pid) for k, pid in ids.items()} == dict.fromkeys(keys, 1)


# --- item 17 ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
async def fake() -> AsyncIterator[GatewayFake]:
    server = GatewayFake(complete_after_s=0.1)
    await server.start()
    yield server
    await server.stop()


async def test_caller_deadline_bounds_a_hanging_provider_and_nothing_stays_pending(
        database_url: str, fake: GatewayFake) -> None:
    # The connector's own timeout is 30 s; only the caller's 1 s deadline can end the call.
    account = AccountConfig(provider="gateway", name="default", settings={
        "base_url": fake.base_url, "public_id": fake.public_id,
        "merchant_id": fake.merchant_id, "secret_key": fake.secret_key, "timeout_s": "30"})
    # submit_grace_s above the deadline: with 1.0 the reconciler claims the still-PENDING
    # payment just before UNKNOWN is recorded and then sits on its claim (README, item 6/17).
    policy = PolicyConfig(start_after_s=0.3, interval_s=0.3, backoff=1.0, max_interval_s=0.5,
                          submit_grace_s=3.0, submit_give_up_s=30.0)
    async with running(settings_for(database_url, accounts=[account],
                                    policies={"gateway": policy})) as service:
        fake.chaos.next_response, fake.chaos.response_count = ResponseFault.TIMEOUT, 1
        fake.chaos.hang_seconds = 3.0  # longer than the caller's deadline, short for teardown
        # No callback either: only the recorded UNKNOWN and a poll can settle it.
        fake.chaos.next_callback, fake.chaos.callback_count = CallbackMode.NEVER, 1
        request = create_request(f"deadline-{uuid.uuid4()}", provider="gateway",
                                 phone="+254712345678", channel="2390", amount=15050)
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await service.stub.CreatePayment(request, metadata=auth(), timeout=1.0)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 1.5
        assert service.app.pool is not None
        payment_id = await service.app.pool.fetchval(
            "SELECT id FROM payments WHERE idempotency_key = $1", request.idempotency_key)
        assert payment_id is not None
        # The provider call inherited the deadline: the outcome is recorded (UNKNOWN) about
        # when the caller gave up, not after the connector's 30 s, and a poll then settles it.
        seen: list[tuple[str, float]] = []
        limit = time.monotonic() + 8.0
        while time.monotonic() < limit:
            status = await service.app.pool.fetchval(
                "SELECT status FROM payments WHERE id = $1", payment_id)
            if not seen or seen[-1][0] != status:
                seen.append((status, round(time.monotonic() - started, 2)))
            if status == "SUCCEEDED":
                break
            await asyncio.sleep(0.05)
        transitions = await all_transitions(service.app.pool, payment_id)
        paths = [c.path for c in fake.calls]
        assert transitions[:2] == ["PENDING", "UNKNOWN"], (transitions, seen, paths)
        unknown_at = next(t for s, t in seen if s == "UNKNOWN")
        assert unknown_at < 2.5, seen
        schedule = await service.app.pool.fetchrow(
            "SELECT now() AS now, next_poll_at, poll_attempts, claimed_until FROM payments"
            " WHERE id = $1", payment_id)
        assert transitions[-1] == "SUCCEEDED", (transitions, seen, paths, schedule)
        got = (await service.stub.GetPayment(pb.GetPaymentRequest(payment_id=payment_id),
                                             metadata=auth())).payment
        assert got.status == payment_pb2.STATUS_SUCCEEDED
        assert len(fake.calls_to("/payment_c2b")) == 1  # one charge, however it was resolved
