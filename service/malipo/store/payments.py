"""The payments repository: rows, the conditional transition and its outbox event."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from malipo.app.journal import JournaledDelivery
from malipo.app.unit_of_work import (
    Added,
    ClaimedBefore,
    IdempotencyRecord,
    KeyTaken,
    ListQuery,
    LockedPayment,
    Schedule,
    Written,
)
from malipo.domain.payments import Change, ChangeKind, Payment
from malipo.domain.status import Direction, predecessors
from malipo.store.callbacks import journaled_args, journaled_ctes
from malipo.store.events import LOG_HEAD
from malipo.store.idempotency_keys import key_holder_from_row, key_holder_select
from malipo.store.rows import (
    BY_REFERENCE,
    PAYMENT_COLUMNS,
    PAYMENT_FIELDS,
    customer_to_json,
    event_payload,
    next_action_to_json,
    payment_fields,
    payment_from_row,
)
from malipo.store.statements import Statements

# $1..$28: the row's columns (PostgresPayments.add); $29 its creation event.
_ROW_VALUES = ",".join(f"${i}" for i in range(1, 29))

# The log head in the inserting statement's snapshot: the new payment's events commit
# after it, so the relay gives them later sequences. A cursor that misses none of them and
# is never older than retention (a create used to answer 0).
_HEAD = LOG_HEAD

# The row and its creation event in one statement: one round trip per write.
_INSERT = f"""
WITH inserted AS (
    INSERT INTO payments ({PAYMENT_COLUMNS}, next_poll_at) VALUES ({_ROW_VALUES})
    RETURNING id
), event AS (INSERT INTO outbox (payload) SELECT $29::jsonb FROM inserted)
SELECT {_HEAD}
"""

# A create's whole first unit of work in one statement, so it needs no BEGIN and COMMIT
# round trips: claim the idempotency key and, only if that claim won, insert the row and its
# event. A racing claim of the same key waits for ours to commit, then finds it taken.
_INSERT_CLAIMED = f"""
WITH claimed AS (
    INSERT INTO idempotency_keys (tenant, key, operation, fingerprint, resource_id)
    VALUES ($2, $30, $31, $32, $1) ON CONFLICT DO NOTHING RETURNING true
), inserted AS (
    INSERT INTO payments ({PAYMENT_COLUMNS}, next_poll_at)
    SELECT {_ROW_VALUES} WHERE EXISTS (SELECT 1 FROM claimed)
    RETURNING id
), event AS (INSERT INTO outbox (payload) SELECT $29::jsonb FROM inserted)
SELECT CASE WHEN EXISTS (SELECT 1 FROM claimed) THEN {_HEAD} END AS claimed_cursor, h.*
FROM (SELECT 1) one
LEFT JOIN ({key_holder_select("$2", "$30")}) h ON NOT EXISTS (SELECT 1 FROM claimed)
"""
# One row. Claimed: claimed_cursor set. Taken: the holder's columns, when the statement's
# snapshot shows them (a replay of a key claimed earlier: the common case, answered in this
# one round trip), else all NULL (the claim that beat ours committed during the statement:
# the caller reads the holder again).

def _reference_held_elsewhere(row: str, reference: str) -> str:
    """SQL: another payment of `row`'s provider account holds `reference`."""
    return (f"EXISTS (SELECT 1 FROM payments o WHERE o.provider = {row}.provider "
            f"AND o.account = {row}.account AND o.provider_reference = {reference} "
            f"AND o.{BY_REFERENCE} AND o.id <> {row}.id)")


def _callbacks_waiting(row: str, reference: str) -> str:
    """SQL: deferred callbacks of `row`'s provider account named `reference`."""
    return (f"EXISTS (SELECT 1 FROM callback_events e WHERE e.provider = {row}.provider "
            f"AND e.account = {row}.account AND e.provider_reference = {reference} "
            f"AND e.outcome = 'DEFERRED')")


# The row lock, and in the same round trip what an update that brings the first provider
# reference must know: whether another payment holds that reference already, and whether
# callbacks that named it are waiting in the journal (they arrived before we knew it).
_LOCK_CHECKING_REFERENCE = f"""
SELECT {payment_fields("p")},
    $2 <> '' AND {_reference_held_elsewhere("p", "$2")} AS taken,
    $2 <> '' AND {_callbacks_waiting("p", "$2")} AS waiting
FROM payments p WHERE p.id = $1 FOR UPDATE OF p
"""

# The guard: the row moves only from the status the change was decided from, and only if the
# transition table allows the target (belt and braces against a stale decision).
_UPDATE = """
UPDATE payments SET
    status = $2, provider_reference = $3, provider_status = $4, provider_message = $5,
    failure_reason = $6, failure_message = $7, next_action = $8, fulfilment = $9,
    needs_review = $10, review_reason = $11, updated_at = $12,
    submit_state = CASE WHEN $13 THEN 'SENT' ELSE submit_state END,
    next_poll_at = CASE WHEN $14 THEN $15 ELSE next_poll_at END,
    poll_attempts = CASE WHEN $16 THEN 0 ELSE poll_attempts END,
    claimed_until = CASE WHEN $14 THEN NULL ELSE claimed_until END,
    version = version + 1
WHERE id = $1 AND ($21::bigint IS NULL OR version = $21)
  AND status = $17 AND ($2 = $17 OR status = ANY($18::text[]))
"""

# The guarded update and its event ($19, written only when $20 and the guard held) in one
# statement: the outbox row exists exactly when the update happened, as before, with one
# round trip instead of two.
_UPDATE_WITH_EVENT = f"""
WITH updated AS ({_UPDATE} RETURNING id),
event AS (INSERT INTO outbox (payload) SELECT $19::jsonb FROM updated WHERE $20::bool)
SELECT count(*) FROM updated
"""


_CLAIMED = "EXISTS (SELECT 1 FROM claimed)"


def _write_unlocked(journaled: bool) -> str:
    """The write for a caller that read the row without locking it: one statement, no
    transaction around it. The version guard makes it a no-op if anything changed since the
    read, and a first provider reference ($22) that another payment holds makes it a no-op
    too (the locked path then flags it); it reports whether deferred callbacks wait for $22.

    `journaled`: in the commit that also journals the callback delivery which brought it and
    claims its event ($23...), both with the outcome the write was decided to have (one
    commit per callback where there were two and the outcome's own). All or nothing: when
    the event was claimed before (a duplicate) or the guard does not hold,
    malipo_all_or_nothing (migrations 0011, 0014) raises, saying which, and the journal row
    goes too; the caller then journals on its own."""
    moved = "EXISTS (SELECT 1 FROM updated)"
    return f"""
WITH {f"{journaled_ctes(23)}," if journaled else ""}
updated AS (
    {_UPDATE.strip()}
      AND ($22 = '' OR NOT {_reference_held_elsewhere("payments", "$22")})
      {f"AND {_CLAIMED}" if journaled else ""}
    RETURNING id, provider, account
),
event AS (INSERT INTO outbox (payload) SELECT $19::jsonb FROM updated WHERE $20::bool)
SELECT {f"malipo_all_or_nothing({moved}, {_CLAIMED})" if journaled else moved} AS written,
       $22 <> '' AND EXISTS (SELECT 1 FROM updated u WHERE {_callbacks_waiting("u", "$22")})
           AS waiting
"""


_WRITE_IF_UNCHANGED = _write_unlocked(journaled=False)
_WRITE_JOURNALED = _write_unlocked(journaled=True)
_ROW_MOVED, _CLAIMED_BEFORE = "MA001", "MA002"  # malipo_all_or_nothing's SQLSTATEs


def _has_event(change: Change) -> bool:
    """Status moves and review flags are events; a refresh of raw fields is not."""
    return change.kind in (ChangeKind.TRANSITION, ChangeKind.REVIEW)


class PostgresPayments:
    def __init__(self, conn: Statements) -> None:
        self._conn = conn
        self.wrote_events = False  # an outbox row is part of this transaction

    async def add(self, payment: Payment, *, actor: str, schedule: Schedule,
                  key: IdempotencyRecord | None = None) -> Added | KeyTaken:
        p = payment
        args = (
            p.id, p.tenant, p.direction.value, p.provider, p.account, p.method.value,
            p.channel, p.country, p.amount.minor, p.amount.currency.code,
            customer_to_json(p.customer), dict(p.provider_fields), p.description,
            dict(p.metadata), p.idempotency_key, p.status.value, p.provider_reference,
            p.provider_status, p.provider_message, p.failure_reason, p.failure_message,
            next_action_to_json(p.next_action), dict(p.fulfilment), p.needs_review,
            p.review_reason, p.created_at, p.updated_at, schedule.next_poll_at,
            event_payload(None, p, reason="", actor=actor),
        )
        if key is None:
            cursor: int | None = await self._conn.fetchval_tx(_INSERT, *args)
        else:
            assert (key.tenant, key.resource_id) == (p.tenant, p.id)
            row = await self._conn.fetchrow_alone(_INSERT_CLAIMED, *args, key.key,
                                                  key.operation, key.fingerprint)
            assert row is not None
            cursor = row["claimed_cursor"]
            if cursor is None:
                return KeyTaken(key_holder_from_row(row) if row["k_key"] is not None else None)
        self.wrote_events = True
        return Added(int(cursor or 0))

    async def get(self, payment_id: str, *, tenant: str | None = None) -> Payment | None:
        row = await self._conn.fetchrow(
            f"SELECT {PAYMENT_FIELDS} FROM payments WHERE id = $1 "
            "AND ($2::text IS NULL OR tenant = $2)", payment_id, tenant,
        )
        return payment_from_row(row) if row else None

    async def lock(self, payment_id: str) -> Payment | None:
        row = await self._conn.fetchrow_tx(
            f"SELECT {PAYMENT_FIELDS} FROM payments WHERE id = $1 FOR UPDATE", payment_id
        )
        return payment_from_row(row) if row else None

    async def lock_for_reference(self, payment_id: str, reference: str) -> LockedPayment | None:
        row = await self._conn.fetchrow_tx(_LOCK_CHECKING_REFERENCE, payment_id, reference)
        if row is None:
            return None
        return LockedPayment(payment_from_row(row), reference_taken=row["taken"],
                             callbacks_waiting=row["waiting"])

    def _write_args(self, change: Change, actor: str, schedule: Schedule | None,
                    submitted: bool, *, unlocked: bool) -> tuple[Any, ...]:
        """Arguments of _UPDATE; the version guard ($21) only for a write without the row
        lock (under the lock, the status guard holds as it always did, and one transaction
        may write the same row twice)."""
        before, a = change.before, change.after
        with_event = _has_event(change)
        return (
            a.id, a.status.value, a.provider_reference, a.provider_status,
            a.provider_message, a.failure_reason, a.failure_message,
            next_action_to_json(a.next_action), dict(a.fulfilment), a.needs_review,
            a.review_reason, a.updated_at, submitted, schedule is not None,
            schedule.next_poll_at if schedule else None,
            bool(schedule and schedule.reset_attempts), before.status.value,
            [s.value for s in predecessors(a.status)],
            event_payload(before, a, reason=change.reason, actor=actor,
                          review=change.kind is ChangeKind.REVIEW,
                          provider_payload=change.provider_payload) if with_event else None,
            with_event, before.version if unlocked else None,
        )

    async def write(self, change: Change, *, actor: str, schedule: Schedule | None = None,
                    submitted: bool = False) -> bool:
        args = self._write_args(change, actor, schedule, submitted, unlocked=False)
        updated = await self._conn.fetchval_tx(_UPDATE_WITH_EVENT, *args)
        self.wrote_events |= _has_event(change) and updated == 1
        return updated == 1

    async def write_if_unchanged(self, change: Change, *, actor: str,
                                 schedule: Schedule | None = None, submitted: bool = False,
                                 new_reference: str = "",
                                 journaled: JournaledDelivery | None = None
                                 ) -> Written | ClaimedBefore | None:
        args = self._write_args(change, actor, schedule, submitted, unlocked=True)
        if journaled is None:
            row = await self._conn.fetchrow_alone(_WRITE_IF_UNCHANGED, *args, new_reference)
        else:
            try:
                row = await self._conn.fetchrow_alone(_WRITE_JOURNALED, *args, new_reference,
                                                      *journaled_args(journaled))
            except asyncpg.exceptions.UnknownPostgresError as exc:  # our SQLSTATE is not theirs
                sqlstate = getattr(exc, "sqlstate", None)
                if sqlstate == _CLAIMED_BEFORE:
                    return ClaimedBefore()
                if sqlstate == _ROW_MOVED:
                    return None
                raise
        assert row is not None
        if not row["written"]:
            return None
        self.wrote_events |= _has_event(change)
        return Written(callbacks_waiting=bool(row["waiting"]))

    async def is_submitted(self, payment_id: str) -> bool:
        # Any status past PENDING also counts: a callback or poll may settle the payment
        # when the create's own write of the answer was lost (a killed DB connection).
        submitted = await self._conn.fetchval(
            "SELECT submit_state = 'SENT' OR status <> 'PENDING' FROM payments WHERE id = $1",
            payment_id)
        return bool(submitted)

    async def schedule(self, payment_id: str, schedule: Schedule) -> None:
        await self._conn.execute_tx(
            "UPDATE payments SET next_poll_at = $2, claimed_until = NULL, "
            "poll_attempts = CASE WHEN $3 THEN 0 ELSE poll_attempts END WHERE id = $1",
            payment_id, schedule.next_poll_at, schedule.reset_attempts,
        )

    async def list(self, query: ListQuery) -> Sequence[Payment]:
        before_at, before_id = query.before if query.before else (None, None)
        rows = await self._conn.fetch(
            f"SELECT {PAYMENT_FIELDS} FROM payments WHERE tenant = $1 AND direction = $2 "
            "AND (cardinality($3::text[]) = 0 OR status = ANY($3::text[])) "
            "AND ($4 = '' OR provider = $4) "
            "AND ($5::timestamptz IS NULL OR created_at >= $5) "
            "AND ($6::timestamptz IS NULL OR created_at < $6) "
            "AND ($7::timestamptz IS NULL OR (created_at, id) < ($7, $8::text)) "
            "AND (NOT $10 OR needs_review) "
            "ORDER BY created_at DESC, id DESC LIMIT $9",
            query.tenant, query.direction.value, [s.value for s in query.statuses],
            query.provider, query.created_after, query.created_before, before_at, before_id,
            query.page_size, query.needs_review,
        )
        return [payment_from_row(r) for r in rows]

    async def by_provider_reference(self, provider: str, account: str,
                                    reference: str) -> Payment | None:
        row = await self._conn.fetchrow(
            f"SELECT {PAYMENT_FIELDS} FROM payments WHERE provider = $1 AND account = $2 "
            f"AND provider_reference = $3 AND {BY_REFERENCE}", provider, account, reference,
        )
        return payment_from_row(row) if row else None

    async def total_today(self, tenant: str, provider: str, channel: str, customer_key: str,
                          direction: Direction, since: datetime) -> int:
        total: int | None = await self._conn.fetchval(  # sum() of no rows is coalesced
            "SELECT coalesce(sum(amount_minor), 0) FROM payments WHERE tenant = $1 "
            "AND provider = $2 AND channel = $3 AND direction = $4 AND created_at >= $5 "
            "AND customer->>'phone_number' = $6 AND status NOT IN ('FAILED', 'CANCELLED')",
            tenant, provider, channel, direction.value, since, customer_key,
        )
        return int(total or 0)
