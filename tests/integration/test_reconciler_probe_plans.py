"""The reconciler's idle probe and its claim read the due rows' index, not the table, as a
new deployment's tables grow.

test_query_plans prices sequential scans out, which shows an index *can* serve a statement.
This module leaves the planner as configured, which shows it *is* chosen: the probe runs
twice a second per replica, and while its table has no statistics yet (autovacuum has not
analyzed it) a plan made when the table was empty, or one that expects a due row early in
any scan, reads every payment ever made at every tick.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import asyncpg
import pytest

from malipo.store.leases import PostgresPollLeases
from malipo.store.refund_leases import PostgresRefundLeases
from tests.integration.test_query_plans import Plans, explaining_pool

ACCOUNTS = ["simulator/default"]
GROWN_TO = 20_000  # payments written after the first ticks, none of them due


@pytest.fixture
async def one_connection(database_url: str) -> AsyncIterator[tuple[asyncpg.Pool, Plans]]:
    """The service's pool, on one connection (so a plan it kept would be used again), with
    every plan handed back as a notice."""
    plans = Plans()
    pool = await explaining_pool(database_url, plans, max_size=1, settings=(
        "SET auto_explain.log_analyze = on; SET auto_explain.log_buffers = on"))
    # No statistics until the test is over, as on a new deployment before autovacuum's
    # first look at its tables (once a minute at most).
    await pool.execute("ALTER TABLE payments SET (autovacuum_enabled = off); "
                       "ALTER TABLE refunds SET (autovacuum_enabled = off)")
    try:
        yield pool, plans
    finally:
        await pool.execute("ALTER TABLE payments RESET (autovacuum_enabled); "
                           "ALTER TABLE refunds RESET (autovacuum_enabled)")
        await pool.close()


async def _grow(pool: asyncpg.Pool) -> None:
    """Payments a busy first minute writes: each polled tomorrow, none due now; each with
    a refund polled tomorrow too."""
    await pool.execute(f"""
INSERT INTO payments (id, tenant, direction, provider, account, method, amount_minor,
                      currency, customer, provider_fields, metadata, idempotency_key, status,
                      created_at, updated_at, next_poll_at)
SELECT 'pay_grown_' || n, 'plans', 'COLLECTION', 'simulator', 'default', 'MOBILE_MONEY',
       1500, 'KES', '{{}}', '{{}}', '{{}}', 'grown-' || n, 'PROCESSING', now(), now(),
       now() + interval '1 day'
FROM generate_series(1, {GROWN_TO}) n;
INSERT INTO refunds (id, payment_id, tenant, amount_minor, currency, reason, idempotency_key,
                     status, created_at, updated_at, next_poll_at)
SELECT 'rfd_grown_' || n, 'pay_grown_' || n, 'plans', 100, 'KES', '', 'grown-' || n,
       'PROCESSING', now(), now(), now() + interval '1 day'
FROM generate_series(1, {GROWN_TO}) n;
""")


def _pages_read(plan: str) -> int:
    """The buffers the whole statement touched: its top node's, which count its children's."""
    top = re.search(r"Buffers: shared( hit=(\d+))?( read=(\d+))?", plan)
    assert top is not None, plan
    return int(top.group(2) or 0) + int(top.group(4) or 0)


@pytest.mark.filterwarnings("ignore:.*active log listener")
async def test_idle_probes_and_claims_read_the_due_index_not_the_table(
        one_connection: tuple[asyncpg.Pool, Plans]) -> None:
    pool, plans = one_connection
    payments, refunds = PostgresPollLeases(pool), PostgresRefundLeases(pool)
    # The first ticks of a new deployment: enough runs for PostgreSQL to keep a plan.
    for _ in range(8):
        for leases in (payments, refunds):
            assert not await leases.any_due(ACCOUNTS)
            assert (await leases.claim(ACCOUNTS, 10, 60)).leased == []
    await _grow(pool)

    plans.seen.clear()
    for leases in (payments, refunds):
        assert not await leases.any_due(ACCOUNTS)
        assert (await leases.claim(ACCOUNTS, 10, 60)).leased == []

    polled = [plan for plan in plans.seen if "next_poll_at <= now()" in plan]
    assert len(polled) == 4, f"auto_explain returned {len(polled)} plans of 4: {plans.seen}"
    table_pages = await pool.fetchval("SELECT pg_relation_size('payments') / 8192")
    assert table_pages > 300
    for table, plan in zip(["payments", "payments", "refunds", "refunds"], polled,
                           strict=True):
        assert f"{table}_due" in plan  # the due rows looked for through their index...
        assert _pages_read(plan) < 30, plan  # ...and nothing else read, with nothing due
