# pyright: basic
"""Stuck refunds across processes: two reconcilers on one database, and a restart after a
crash. Each test runs its own server (so no other reconciler shares this module's
database)."""

from __future__ import annotations

import asyncio

from malipo.payments.v1 import payment_pb2
from malipo.reconciler.loop import Reconciler
from malipo.store.leases import PostgresPollLeases
from malipo.store.refund_leases import PostgresRefundLeases
from malipo.store.unit_of_work import create_pool
from tests.e2e.test_partial_refunds import POLICY, kes, refund, refunds_of
from tests.e2e.test_refund_reconciliation import (
    pool,
    settled_refunds,
    simulator,
    stuck_refund,
    succeeded,
)
from tests.harness import auth, running, settings_for


async def test_two_reconcilers_poll_a_stuck_refund_once_at_a_time(database_url: str) -> None:
    async with running(settings_for(database_url, reconcile_interval_s=3600,
                                    policies={"simulator": POLICY})) as service:
        services = service.app.services
        assert services is not None
        payments = [await succeeded(service, 500, refund_scenario="timeout")
                    for _ in range(8)]
        refund_ids = [(await service.stub.RefundPayment(refund(p.id), metadata=auth())
                       ).refund.id for p in payments]
        await pool(service).execute(
            "UPDATE refunds SET next_poll_at = now() - interval '1 second' WHERE id = ANY($1)",
            refund_ids)
        pool_b = await create_pool(service.app.database_url, min_size=1, max_size=5)
        try:
            a = Reconciler(services, PostgresPollLeases(pool(service)), batch=20,
                           refund_leases=PostgresRefundLeases(pool(service)))
            b = Reconciler(services, PostgresPollLeases(pool_b), batch=20,
                           refund_leases=PostgresRefundLeases(pool_b))
            claimed = await asyncio.gather(a.tick(), b.tick())
        finally:
            await pool_b.close()
        assert sum(claimed) >= len(refund_ids)
        sim = simulator(service)
        assert [sim.calls_for(p.id, "refund_status") for p in payments] == [1] * 8
        statuses = await pool(service).fetch(
            "SELECT status, next_poll_at FROM refunds WHERE id = ANY($1)", refund_ids)
        assert {(r["status"], r["next_poll_at"]) for r in statuses} == {("SUCCEEDED", None)}


async def test_refund_left_pending_is_completed_once_after_a_restart(
        database_url: str) -> None:
    """The crash's leftovers are in PostgreSQL only; another process completes the refund
    with one call, and a replay of the caller's key answers that one refund."""
    idle = settings_for(database_url, reconcile_interval_s=3600,
                        policies={"simulator": POLICY})
    async with running(idle) as first:
        p = await succeeded(first, 900)
        stuck = await stuck_refund(first, p.id, 300)
        assert first.connector("simulator").calls_for(p.id, "refund") == 0
    async with running(settings_for(database_url, policies={"simulator": POLICY})) as second:
        refunds = await settled_refunds(second, p.id)
        assert [(r.id, r.status) for r in refunds] == [
            (stuck.id, payment_pb2.STATUS_SUCCEEDED)]
        sim = simulator(second)
        assert sim.calls_for(p.id, "refund") == 1
        assert sim.client.records[p.id].refunded_minor == 300
        listed = await refunds_of(second, p.id)
        assert (listed.refunded, listed.remaining) == (kes(300), kes(600))
        replay = await second.stub.RefundPayment(
            refund(p.id, kes(300), idempotency_key=stuck.idempotency_key), metadata=auth())
        assert (replay.refund.id, replay.refund.status) == (
            stuck.id, payment_pb2.STATUS_SUCCEEDED)
        assert sim.calls_for(p.id, "refund") == 1
