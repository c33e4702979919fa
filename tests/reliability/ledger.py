# pyright: basic
"""Whole-database money invariants, checked after a fault test once the dust has settled."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc

from malipo.domain.status import ALLOWED, UNSETTLED, Status
from malipo.reconciler.loop import LEASE_S
from malipo.sandbox.gateway import GatewayFake
from tests.harness import auth, create_request
from tests.reliability.test_db_and_deadline_faults import has_retry_info

OPEN = sorted({Status.PENDING.value, *(s.value for s in UNSETTLED)})


async def wait_settled(conn: asyncpg.Connection, seconds: float = 30.0) -> None:
    """Until the relay has emptied the outbox and every payment is final (the service must
    still run). No exception for reconciler leases: a claim or release that a fault cut
    short is undone or retried (test_reconciler_leases.py), so a lease that outlived the
    fault would hold its payment for LEASE_S (60 s), past this wait: that regression fails
    here."""
    assert seconds < LEASE_S, "a wait as long as a lease would hide a lease that outlived a fault"
    row: Any = None
    for _ in range(int(seconds / 0.1)):
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM payments WHERE status = ANY($1::text[])) AS open,"
            " (SELECT count(*) FROM outbox) AS outbox", OPEN)
        if row["open"] == 0 and row["outbox"] == 0:
            return
        await asyncio.sleep(0.1)
    stuck = await conn.fetch("SELECT id, status, submit_state, next_poll_at, claimed_until,"
                             " claimed_until - now() AS lease, needs_review, review_reason"
                             " FROM payments WHERE status = ANY($1::text[]) LIMIT 5", OPEN)
    raise AssertionError(f"not settled in {seconds} s: {dict(row)} "
                         f"{[dict(r) for r in stuck]}")


async def check_histories(conn: asyncpg.Connection) -> dict[str, str]:
    """Every payment's events start ''->PENDING, chain, only move along the transition table,
    never change the amount and end in the row's status; the log is 1..head with no gap.
    Returns each payment's status."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        payments = await conn.fetch("SELECT id, status, amount_minor, currency FROM payments")
        events = await conn.fetch("SELECT sequence, payment_id, old_status, new_status,"
                                  " amount_minor, currency FROM events ORDER BY sequence")
        state = await conn.fetchrow("SELECT head FROM event_log_state")
    assert state is not None
    assert [e["sequence"] for e in events] == list(range(1, state["head"] + 1)), "gap in the log"
    money = {p["id"]: (p["amount_minor"], p["currency"]) for p in payments}
    last: dict[str, str] = {}
    for e in events:
        pid, old, new = e["payment_id"], e["old_status"], e["new_status"]
        assert pid in money, f"event of a payment that does not exist: {dict(e)}"
        assert (e["amount_minor"], e["currency"]) == money[pid], dict(e)
        if pid not in last:
            assert (old, new) == ("", "PENDING"), f"history starts mid-way: {dict(e)}"
        else:
            assert old == last[pid], (last[pid], dict(e))
            assert new == old or Status(new) in ALLOWED[Status(old)], dict(e)
        last[pid] = new
    for p in payments:
        assert p["id"] in last, f"payment without its creation event: {dict(p)}"
        assert p["status"] == last[p["id"]], (dict(p), last[p["id"]])
    return {p["id"]: p["status"] for p in payments}


def charges(fake: GatewayFake) -> Counter[str]:
    """Payment-request calls (C2B) the gateway received, per order id (our payment id)."""
    return Counter(str(json.loads(c.body)["order_id"]) for c in fake.calls_to("/payment_c2b"))


@dataclass(frozen=True)
class Call:
    """One CreatePayment of a fault test, as its client saw it."""

    key: str
    started: float
    ended: float
    code: grpc.StatusCode
    retry_info: bool
    payment_id: str
    details: str = ""


async def create_call(stub: Any, key: str, timeout: float) -> Call:
    """A gateway collection with `key`; never raises, the outcome is in the Call."""
    request = create_request(key, provider="gateway", channel="2390", phone="+254712345678",
                             amount=10000)
    started = time.monotonic()
    try:
        got = await stub.CreatePayment(request, metadata=auth(), timeout=timeout)
        return Call(key, started, time.monotonic(), grpc.StatusCode.OK, False, got.payment.id)
    except grpc.aio.AioRpcError as err:
        return Call(key, started, time.monotonic(), err.code(), has_retry_info(err), "",
                    err.details() or "")


async def check_same_key_retries(stub: Any, calls: Sequence[Call]) -> list[Call]:
    """Every key retried once more succeeds, with the payment of its first OK answer."""
    first_ok = {c.key: c.payment_id for c in calls if c.code is grpc.StatusCode.OK}
    gate = asyncio.Semaphore(8)

    async def retry(key: str) -> Call:
        # As a client that honours RetryInfo: the retries of every key at once can outrun the
        # tenant's rate limit (200/s) on a fast machine, and RESOURCE_EXHAUSTED says to wait.
        async with gate:
            for _ in range(20):
                call = await create_call(stub, key, timeout=10)
                if call.code is not grpc.StatusCode.RESOURCE_EXHAUSTED or not call.retry_info:
                    return call
                await asyncio.sleep(0.5)
            return call

    retried = await asyncio.gather(*(retry(c.key) for c in calls))
    assert [r for r in retried if r.code is not grpc.StatusCode.OK] == []
    assert all(first_ok.get(r.key, r.payment_id) == r.payment_id for r in retried)
    return retried


async def check_ledger(url: str, retried: Sequence[Call], fake: GatewayFake) -> None:
    """After a fault test (the service still running): everything settles; every history is
    whole; every key made exactly the payment its creates returned, and no key points at
    nothing; every payment SUCCEEDED, and the provider charged each exactly once, never one
    we have no row for."""
    conn = await asyncpg.connect(url)
    try:
        await wait_settled(conn)                  # by callbacks and the reconciler
        statuses = await check_histories(conn)    # creation event, transition table, no gap
        per_key = await conn.fetch("SELECT idempotency_key, array_agg(id) AS ids FROM payments"
                                   " GROUP BY idempotency_key")
        orphan_keys = await conn.fetchval(
            "SELECT count(*) FROM idempotency_keys k WHERE NOT EXISTS"
            " (SELECT 1 FROM payments p WHERE p.id = k.resource_id)")
    finally:
        await conn.close()
    assert {r["idempotency_key"]: r["ids"] for r in per_key} == \
        {r.key: [r.payment_id] for r in retried}
    assert orphan_keys == 0
    assert set(statuses.values()) == {"SUCCEEDED"}, statuses
    charged = charges(fake)
    assert set(charged) <= set(statuses) and max(charged.values()) == 1, charged
    assert all(charged[p] == 1 for p in statuses)
