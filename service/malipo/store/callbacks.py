"""The callback journal: raw deliveries first, then one row per provider event."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from typing import Any

import asyncpg

from malipo.app.journal import Claimed, Deferred, Delivery, EventClaim, JournaledDelivery
from malipo.store.rows import BY_REFERENCE, PAYMENT_FIELDS, payment_from_row


def _args(first: int, count: int) -> list[str]:
    """Placeholders $first..: a statement's own arguments, or ones after another's."""
    return [f"${first + i}" for i in range(count)]


def _record_into(first: int) -> str:
    """The journal row; `_delivery_args` are its arguments, numbered from `first`."""
    return ("INSERT INTO callback_journal (provider, account, received_at, remote, headers, "
            f"body, body_sha256, outcome, detail) VALUES ({', '.join(_args(first, 9))})")


_RECORD = _record_into(1)

# Claim an event (its row is the de-duplication identity). A re-send may claim again an
# event whose payment was unknown (the provider's re-send, e.g. Paykassma's after our non-ok
# answer, is how a callback that outran our own commit gets applied), or whose processing
# died half way (still RECEIVED after a while): nothing is lost.
_CLAIM_INTO = (
    "INSERT INTO callback_events (provider, account, event_key, journal_id, payment_id, "
    "provider_reference, outcome, event) {values} "
    "ON CONFLICT (provider, account, event_key) DO UPDATE SET "
    "journal_id = EXCLUDED.journal_id, outcome = EXCLUDED.outcome "
    "WHERE callback_events.outcome = 'UNKNOWN_PAYMENT' OR (callback_events.outcome = "
    "'RECEIVED' AND callback_events.created_at < now() - interval '30 seconds') "
    "RETURNING true"
)
_CLAIM = _CLAIM_INTO.format(values="VALUES ($1,$2,$3,$4,$5,$6,'RECEIVED',$7)")

def journaled_ctes(first: int) -> str:
    """SQL: CTEs `delivery` (the journal row, its outcome given) and `claimed` (its event's
    claim, with the same outcome; a row only when the claim is fresh), for a statement that
    writes what the delivery brought in the same commit. Their arguments (`journaled_args`)
    are numbered from `first`."""
    a = _args(first, 13)
    values = (f"SELECT {a[0]}, {a[1]}, {a[9]}, d.id, {a[10]}, {a[11]}, {a[7]}, {a[12]} "
              "FROM delivery d")
    return (f"delivery AS ({_record_into(first)} RETURNING id),\n"
            f"claimed AS ({_CLAIM_INTO.format(values=values)})")


# The delivery and the claim of the one event it carries, in one statement (the usual
# case), which also reads the payment the event names: of this provider account, by our id
# ($11) when the event gives it, else by the provider's reference ($12).
_RECORD_AND_CLAIM = f"""
WITH {journaled_ctes(1)}
SELECT d.id AS journal_id, EXISTS (SELECT 1 FROM claimed) AS fresh, p.*
FROM delivery d LEFT JOIN LATERAL (
    (SELECT {PAYMENT_FIELDS} FROM payments
     WHERE $11 <> '' AND id = $11 AND provider = $1 AND account = $2)
    UNION ALL
    (SELECT {PAYMENT_FIELDS} FROM payments
     WHERE $11 = '' AND $12 <> '' AND provider = $1 AND account = $2
       AND provider_reference = $12 AND {BY_REFERENCE})
    LIMIT 1
) p ON true
"""


def journaled_args(journaled: JournaledDelivery) -> tuple[Any, ...]:
    """`journaled_ctes`' arguments, in order."""
    claim = journaled.claim
    return (*_delivery_args(journaled.delivery, journaled.outcome, ""), claim.key,
            claim.payment_id, claim.reference, dict(claim.event))


# Deliveries' outcomes, and their events' where an event key is given, for a batch of
# deliveries in one statement. `= ANY(...)` keeps both updates on their primary keys under a
# generic plan (tests/integration/test_query_plans.py).
_MARK = """
WITH marks AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::text[])
        AS m(journal_id, outcome, detail, event_key, event_outcome, provider, account)
), events AS (
    UPDATE callback_events e SET outcome = m.event_outcome FROM marks m
    WHERE e.provider = ANY($6::text[]) AND e.account = ANY($7::text[])
      AND e.event_key = ANY($4::text[]) AND m.event_key <> ''
      AND (e.provider, e.account, e.event_key) = (m.provider, m.account, m.event_key)
)
UPDATE callback_journal j SET outcome = m.outcome, detail = m.detail FROM marks m
WHERE j.id = ANY($1::bigint[]) AND j.id = m.journal_id
"""


def _delivery_args(d: Delivery, outcome: str, detail: str) -> tuple[Any, ...]:
    """_RECORD's arguments."""
    return (d.provider, d.account, d.received_at, d.remote, dict(d.headers), d.body,
            hashlib.sha256(d.body).hexdigest(), outcome, detail[:1000])


_Mark = tuple[int, str, str, str, str, str, str]  # one row of _MARK's arrays


class _Marks:
    """Group commit for outcomes: a mark waits for the statement that writes it, and marks
    that arrive while one statement is out go together in the next. With nothing else in
    flight a mark is written at once; under load one round trip serves many deliveries."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._waiting: list[tuple[_Mark, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def write(self, mark: _Mark) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((mark, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all())
        await done

    async def _write_all(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                batch.sort(key=lambda item: item[0][0])  # one lock order for every writer
                try:
                    await self._pool.execute(_MARK, *(list(col) for col in
                                                      zip(*(m for m, _ in batch), strict=True)))
                except Exception as exc:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                except BaseException:  # cancelled (shutdown): so are the waiters
                    for _, done in batch:
                        done.cancel()
                    raise
                else:
                    for _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._writer = None


class PostgresCallbackJournal:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._marks = _Marks(pool)

    async def record(self, delivery: Delivery, *, outcome: str = "RECEIVED",
                     detail: str = "") -> int:
        journal_id: int = await self._pool.fetchval(
            _RECORD + " RETURNING id", *_delivery_args(delivery, outcome, detail))
        return journal_id

    async def record_claiming(self, delivery: Delivery, claim: EventClaim) -> Claimed:
        row = await self._pool.fetchrow(
            _RECORD_AND_CLAIM, *journaled_args(JournaledDelivery(delivery, claim, "RECEIVED")))
        assert row is not None
        payment = payment_from_row(row) if row["id"] is not None else None
        return Claimed(int(row["journal_id"]), bool(row["fresh"]), payment)

    async def mark_delivery(self, journal_id: int, outcome: str, detail: str = "", *,
                            event: tuple[str, str, str] = ("", "", ""),
                            event_outcome: str = "") -> None:
        provider, account, key = event
        await self._marks.write((journal_id, outcome, detail[:1000], key,
                                 event_outcome or outcome, provider, account))

    async def claim_event(self, provider: str, account: str, event_key: str, journal_id: int,
                          payment_id: str, reference: str, event: Mapping[str, Any]) -> bool:
        inserted = await self._pool.fetchval(
            _CLAIM, provider, account, event_key, journal_id, payment_id, reference, dict(event))
        return bool(inserted)

    async def mark_event(self, provider: str, account: str, event_key: str, outcome: str) -> None:
        await self._pool.execute(
            "UPDATE callback_events SET outcome = $4 WHERE provider = $1 AND account = $2 "
            "AND event_key = $3", provider, account, event_key, outcome)

    async def deferred_for(self, provider: str, account: str,
                           reference: str) -> list[Deferred]:
        rows = await self._pool.fetch(
            "SELECT e.event_key, e.journal_id, j.body FROM callback_events e "
            "JOIN callback_journal j ON j.id = e.journal_id WHERE e.provider = $1 "
            "AND e.account = $2 AND e.provider_reference = $3 AND e.outcome = 'DEFERRED' "
            "ORDER BY e.journal_id", provider, account, reference)
        return [Deferred(r["event_key"], r["journal_id"], bytes(r["body"])) for r in rows]
