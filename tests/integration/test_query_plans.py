"""No hot statement scans a whole table that grows with the business.

asyncpg prepares every statement, and after a few runs PostgreSQL may keep one generic plan
for it, made without the parameters' values. A predicate the planner can only prove from a
value (`provider_reference = $3` implies the partial index's `provider_reference <> ''`)
then stops matching its index, and the statement silently becomes a scan of every payment:
fine in a test, minutes per second in production. So the real paths (create, replay, get,
callback, the event relay and the hub's read) run here with generic plans forced and
sequential scans priced out; auto_explain hands every plan back as a notice, and a
`Seq Scan` on a growing table means no index could serve it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from malipo.app.commands import CreatePayment
from malipo.app.connector import InboundCallback, ProviderAccount
from malipo.app.directory import ConnectorDirectory
from malipo.app.exchanges import list_provider_exchanges
from malipo.app.payments import create_payment, get_payment
from malipo.app.services import Services
from malipo.app.unit_of_work import ExchangeKind
from malipo.app.webhooks import NewEndpoint
from malipo.callbacks.processing import CallbackProcessor
from malipo.connectors import registry
from malipo.connectors.simulator.signing import SIGNATURE_HEADER, sign
from malipo.domain.payments import Customer, Payment
from malipo.domain.status import Direction, Status
from malipo.store.callbacks import PostgresCallbackJournal
from malipo.store.events import move_batch, purge_events, read_new
from malipo.store.refund_leases import PostgresRefundLeases
from malipo.store.retention import purge_exchange_log, purge_idempotency_keys
from malipo.store.unit_of_work import PostgresUnitOfWorkFactory, init_connection
from malipo.store.webhooks import DeliveryClaims, PostgresWebhookEndpoints
from malipo.webhooks.signing import new_secret
from tests.integration.streaming.writers import payload

GROWING = ("payments", "events", "idempotency_keys", "callback_journal", "callback_events",
           "provider_exchanges", "refunds")
SECRET = "plans-secret"


class Plans:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, _conn: object, message: asyncpg.PostgresLogMessage) -> None:
        text = str(getattr(message, "message", ""))  # the notice's text (untyped in asyncpg)
        if "plan:" in text:
            self.seen.append(text)

    def reference_checks(self) -> list[str]:
        """Foreign key checks run (PostgreSQL's own statements, one per row written)."""
        return [plan for plan in self.seen if "FOR KEY SHARE OF x" in plan]

    def scans(self) -> list[str]:
        """`table: statement's first words` for each plan that scans a growing table."""
        pattern = re.compile(r"Seq Scan on (" + "|".join(GROWING) + r")\b")
        found = []
        for plan in self.seen:
            for match in pattern.finditer(plan):
                query = " ".join(plan.split("Query Text:", 1)[-1].split())[:90]
                found.append(f"{match.group(1)}: {query}")
        return found


async def explaining_pool(database_url: str, plans: Plans, *, settings: str,
                          max_size: int) -> asyncpg.Pool:
    """A pool like the service's (its codecs, nothing reset at release) whose every plan
    reaches `plans` as an auto_explain notice; `settings`: more SETs for each connection."""

    async def init(conn: asyncpg.Connection) -> None:
        await init_connection(conn)  # the service's own codecs
        await conn.execute("LOAD 'auto_explain'")
        await conn.execute("SET auto_explain.log_min_duration = 0; "
                           "SET auto_explain.log_level = notice; "
                           f"SET auto_explain.log_nested_statements = on; {settings}")

    async def setup(conn: asyncpg.Connection) -> None:
        conn.add_log_listener(plans)  # asyncpg drops listeners at every release

    async def keep_settings(conn: asyncpg.Connection) -> None:
        del conn  # as the service's pool: no RESET ALL, which would undo init's SETs

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=max_size, init=init,
                                     setup=setup, reset=keep_settings)
    assert pool is not None
    return pool


@pytest.fixture
async def explained(database_url: str) -> AsyncIterator[tuple[asyncpg.Pool, Plans]]:
    plans = Plans()
    pool = await explaining_pool(database_url, plans, max_size=2, settings=(
        "SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off"))
    try:
        yield pool, plans
    finally:
        await pool.close()


async def _paid_by_callback(pool: asyncpg.Pool) -> tuple[Services, Payment]:
    """The hot paths, in order: a create (key claim + insert, then the answer), its replay,
    a read, the provider's callback and its re-send."""
    simulator = registry.build(ProviderAccount("simulator", "default",
                                               {"callback_secret": SECRET}))
    svc = Services(PostgresUnitOfWorkFactory(pool), ConnectorDirectory([simulator], {}),
                   PostgresCallbackJournal(pool))
    callbacks = CallbackProcessor(svc)
    cmd = CreatePayment("plans", f"plans-{time.time_ns()}", Direction.COLLECTION, "simulator",
                        1500, "KES", customer=Customer(phone_number="+254700000005"))

    payment = await create_payment(svc, cmd, None)  # key claim + insert, then the answer
    assert payment.status is Status.PROCESSING and payment.provider_reference
    assert (await create_payment(svc, cmd, None)).id == payment.id  # the replay's one read
    assert await get_payment(svc, "plans", payment.id) is not None
    body = json.dumps({
        "event_id": f"{payment.id}:SUCCEEDED", "payment_id": "",
        "reference": payment.provider_reference, "status": "SUCCEEDED",
        "provider_status": "success", "failure_reason": "", "failure_message": "",
        "amount_minor": 1500, "currency": "KES"}).encode()
    headers = {SIGNATURE_HEADER.lower(): sign(SECRET, body, int(time.time()))}
    delivery = InboundCallback("simulator", "default", headers, body, {}, "127.0.0.1",
                               payment.created_at)
    outcome = await callbacks.handle(simulator, delivery)
    assert outcome.value == "APPLIED"  # found by the provider's reference alone
    # The re-send: the one-commit path writes nothing, the path that journals first runs.
    assert (await callbacks.handle(simulator, delivery)).value == "DUPLICATE"
    return svc, payment


# Each release warns that the listener `setup` adds is still there; that is the point.
@pytest.mark.filterwarnings("ignore:.*active log listener")
async def test_hot_paths_reach_rows_through_indexes(
        explained: tuple[asyncpg.Pool, Plans]) -> None:
    pool, plans = explained
    await _paid_by_callback(pool)
    async with pool.acquire() as conn:
        assert await move_batch(conn, 100) >= 3  # created, PROCESSING, SUCCEEDED
        events, _head = await read_new(conn, 0, limit=100)
        assert len(events) >= 3

    assert len(plans.seen) >= 8, "auto_explain returned no plans: the check saw nothing"
    assert plans.scans() == []
    # The callback's statement inserts the journal row its event names: nothing to check.
    assert plans.reference_checks() == []


@pytest.mark.filterwarnings("ignore:.*active log listener")
async def test_refund_polls_reach_refunds_through_indexes(
        explained: tuple[asyncpg.Pool, Plans]) -> None:
    """The reconciler's refund claims run every tick over every refund ever made."""
    pool, plans = explained
    leases = PostgresRefundLeases(pool)
    accounts = ["simulator/default"]
    assert not await leases.any_due(accounts)
    assert (await leases.claim(accounts, 10, 60)).leased == []
    async with PostgresUnitOfWorkFactory(pool)() as uow:
        assert await uow.refunds.for_payment("pay_plans") == []
        assert (await uow.refunds.totals("pay_plans")).held == 0

    assert len(plans.seen) >= 4, "auto_explain returned no plans: the check saw nothing"
    assert plans.scans() == []
    # Not just any index read end to end: the partial index of refunds with a poll due.
    claims = [plan for plan in plans.seen if "claimed_until = now()" in plan]
    assert claims
    assert all("refunds_due" in plan for plan in claims)


@pytest.mark.filterwarnings("ignore:.*active log listener")
async def test_webhook_delivery_reads_the_tenants_events_through_indexes(
        explained: tuple[asyncpg.Pool, Plans]) -> None:
    pool, plans = explained
    tenant = f"hooks-{time.time_ns()}"
    endpoints, claims = PostgresWebhookEndpoints(pool), DeliveryClaims(pool)
    stored = await endpoints.add(NewEndpoint(
        id=f"whe_{time.time_ns()}", tenant=tenant, url="https://h.example/in", description="",
        secret=new_secret(), idempotency_key="plans", fingerprint="f"), limit=20)
    assert stored is not None
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO outbox (payload) VALUES ($1)",
                           payload(tenant, "pay_plans"))
        assert await move_batch(conn, 100) >= 1
    plans.seen.clear()
    assert await claims.any_due()
    [claim] = [c for c in await claims.claim(20, 30) if c.id == stored.endpoint.id]
    pending = await claims.pending(claim, claim.cursor, 100)
    assert [e.payment_id for e in pending.events] == ["pay_plans"]
    assert await claims.advance(claim, pending.events[0].sequence)
    await claims.release(claim)
    assert [e.id for e in await endpoints.list(tenant)] == [stored.endpoint.id]

    assert len(plans.seen) >= 5, "auto_explain returned no plans: the check saw nothing"
    assert plans.scans() == []
    assert not [p for p in plans.seen if "Seq Scan on webhook_endpoints" in p]


@pytest.mark.filterwarnings("ignore:.*active log listener")
async def test_the_key_purge_finds_old_keys_through_their_age_index(
        explained: tuple[asyncpg.Pool, Plans]) -> None:
    """The purge runs in every replica over a table of every key of the last month."""
    pool, plans = explained
    await pool.execute("INSERT INTO idempotency_keys (tenant, key, operation, fingerprint, "
                       "resource_id, created_at) VALUES ('plans', $1, 'cancel', 'f', "
                       "'pay_plans', now() - interval '40 days')", f"old-{time.time_ns()}")
    plans.seen.clear()
    assert await purge_idempotency_keys(pool, datetime.now(UTC) - timedelta(days=30)) >= 1

    purges = [p for p in plans.seen if "DELETE FROM idempotency_keys" in p]
    assert purges
    assert plans.scans() == []
    assert all("idempotency_keys_age" in p for p in purges)


@pytest.mark.filterwarnings("ignore:.*active log listener")
async def test_the_event_purge_finds_its_cut_off_through_the_log_sequence(
        explained: tuple[asyncpg.Pool, Plans]) -> None:
    """Retention runs over the whole log; since migration 0013 no index on recorded_at serves
    it, so the cut-off has to come from walking the primary key."""
    pool, plans = explained
    plans.seen.clear()
    assert await purge_events(pool, timedelta(days=3650)) == 0  # nothing that old

    cuts = [p for p in plans.seen if "young" in p]
    assert cuts
    assert plans.scans() == []
    assert all("events_pkey" in p for p in cuts)


@pytest.mark.filterwarnings("ignore:.*active log listener")
async def test_the_journal_purge_checks_nothing_per_deleted_delivery(
        explained: tuple[asyncpg.Pool, Plans]) -> None:
    """Until migration 0015 every deleted journal row ran a foreign key check that read all
    of callback_events (no index on journal_id): 22 s for 2,000 rows over 20,000 events."""
    pool, plans = explained
    old = datetime.now(UTC) - timedelta(days=40)
    for n in range(3):
        await pool.execute(
            "WITH d AS (INSERT INTO callback_journal (provider, account, received_at, headers, "
            "body, body_sha256) VALUES ('simulator', 'default', $2, '{}', 'x', $1) "
            "RETURNING id) INSERT INTO callback_events (provider, account, event_key, "
            "journal_id, outcome) SELECT 'simulator', 'default', $1, id, 'APPLIED' FROM d",
            f"plans-old-{time.time_ns()}-{n}", old)
    plans.seen.clear()
    purged = await purge_exchange_log(pool, datetime.now(UTC) - timedelta(days=30))

    assert purged.callback_events >= 3 and purged.callback_deliveries >= 3
    assert any("DELETE FROM callback_journal" in p for p in plans.seen)
    assert plans.reference_checks() == []


_INDEX_NODE = re.compile(r"(?:Index Scan|Index Only Scan) using (\w+)|Bitmap Index Scan on (\w+)")
_ARBITERS = re.compile(r"Conflict Arbiter Indexes: ([\w, ]+)")


def _searched(plans: list[str]) -> dict[str, str]:
    """Index name -> every condition a plan searched it by ("*" for an ON CONFLICT arbiter,
    which probes the whole key)."""
    searched: dict[str, str] = {}
    for plan in plans:
        lines = plan.splitlines()
        for n, line in enumerate(lines):
            if node := _INDEX_NODE.search(line):
                name = node.group(1) or node.group(2)
                cond = next((c for c in lines[n + 1:n + 4] if "Index Cond:" in c), "")
                searched[name] = searched.get(name, "") + cond
            for arbiters in _ARBITERS.findall(line):
                for name in arbiters.split(","):
                    searched[name.strip()] = searched.get(name.strip(), "") + "*"
    return searched


@pytest.mark.filterwarnings("ignore:.*active log listener")
async def test_every_index_a_callback_writes_is_searched_by_its_key(
        explained: tuple[asyncpg.Pool, Plans]) -> None:
    """Each delivery pays for an entry in every index of the journal and its events, so each
    must serve a search by its whole key: on the callback paths, in support's read of a
    payment's exchanges, or in retention. An index only walked by its leading columns is a
    scan of those rows that a narrower index (or the table) gives as well. Until migration
    0016, callback_journal_body (provider, account, body_sha256) was such an index: the
    support read filters the account's rows by digest, never searches it, and every delivery
    wrote an entry keyed by a SHA-256, a random leaf of an index as large as the journal."""
    pool, plans = explained
    svc, payment = await _paid_by_callback(pool)
    assert any(r.kind is ExchangeKind.CALLBACK
               for r in await list_provider_exchanges(svc, "plans", payment.id))
    await purge_exchange_log(pool, datetime.now(UTC) - timedelta(days=30))

    searched = _searched(plans.seen)
    keys = {r["name"]: r["last"] for r in await pool.fetch(
        "SELECT i.relname AS name, (array_agg(a.attname ORDER BY k.n DESC))[1] AS last "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_class t ON t.oid = x.indrelid "
        "CROSS JOIN unnest(x.indkey) WITH ORDINALITY k(attnum, n) "
        "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
        "WHERE t.relname IN ('callback_journal', 'callback_events') GROUP BY i.relname")}
    assert {"callback_journal_pkey", "callback_events_pkey"} <= keys.keys()
    unsearched = {name for name, last in keys.items()
                  if "*" not in searched.get(name, "")
                  and not re.search(rf"\b{last}\b", searched.get(name, ""))}
    assert unsearched == set()
