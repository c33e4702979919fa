"""The event log's SQL: the relay's move, the readers' pages, retention and export position.

Only the relay writes `events` and `event_log_state.head`; everything here that reads pairs
the rows with `head`/`purged_through` from the same snapshot, so a reader never mistakes a
purged range or a not-yet-visible batch for "nothing there".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from malipo.domain.events import EventFilter, StatusEvent
from malipo.domain.money import Money
from malipo.domain.status import Direction, Status

OUTBOX_CHANNEL = "malipo_outbox"
EVENTS_CHANNEL = "malipo_events"

# A connection, plain or borrowed from a pool.
Conn = asyncpg.Connection | PoolConnectionProxy

# The event log's head, as a scalar subquery: the cursor a new write's answers carry.
LOG_HEAD = "(SELECT head FROM event_log_state WHERE id = 1)"

EVENT_COLUMNS = (
    "sequence, event_id, tenant, payment_id, direction, provider, account, old_status, "
    "new_status, provider_status, provider_reference, amount_minor, currency, reason, message, "
    "fulfilment, needs_review, actor, occurred_at, provider_payload, refund_id"
)

async def move_batch(conn: Conn, limit: int) -> int:
    """Move up to `limit` committed outbox rows into the log; return how many moved.

    Sequences are head+1.. in outbox-id order, in the same transaction that advances head,
    so a batch is either wholly visible with its head or not at all (see EventRelay). One
    round trip: the state row's lock, then the move in a snapshot taken after it, run by
    the function of migration 0010 in the call's own transaction (or the caller's)."""
    return cast("int", await conn.fetchval("SELECT malipo_move_outbox($1, $2)", limit,
                                           EVENTS_CHANNEL))


async def vacuum_outbox(conn: Conn) -> None:
    """Clear the outbox of the rows the relay deleted.

    Each move reads the outbox from its lowest id, and a deleted row's index entry stays
    until a vacuum, so every move walked past all the rows deleted since the last one.
    Autovacuum looks at a table at most once a minute (autovacuum_naptime): at 1,000 events
    a second that is tens of thousands of entries per move, where a vacuum every thousand
    events costs about 2 ms (and at most one a second: each makes every session plan its
    statements that name the outbox again, streaming.relay.VACUUM_INTERVAL_S). SKIP_LOCKED:
    if autovacuum is already at it, this one is not needed. A role that does not own the
    table gets a warning, not an error."""
    await conn.execute("VACUUM (SKIP_LOCKED, TRUNCATE false) outbox")


@dataclass(frozen=True, slots=True)
class LogState:
    head: int
    purged_through: int


@dataclass(frozen=True, slots=True)
class Page:
    """Matching events in (after, examined], oldest first, read in one snapshot."""

    events: list[StatusEvent]
    examined: int  # every event up to here was looked at (matched or not)
    head: int
    purged_through: int


async def log_state(conn: Conn | asyncpg.Pool) -> LogState:
    row = await conn.fetchrow("SELECT head, purged_through FROM event_log_state WHERE id = 1")
    assert row is not None
    return LogState(row["head"], row["purged_through"])


async def read_new(conn: Conn, after: int,
                   limit: int) -> tuple[list[StatusEvent], int]:
    """Every event after `after` (no filter: the hub's one read for all subscribers), and head.

    One statement, so one snapshot: the relay commits whole batches with their head, so the
    rows seen are exactly the contiguous range after..head of that snapshot."""
    rows = await conn.fetch(
        f"SELECT s.head, e.* FROM event_log_state s LEFT JOIN LATERAL ("
        f"SELECT {EVENT_COLUMNS} FROM events WHERE sequence > $1 ORDER BY sequence LIMIT $2"
        f") e ON true WHERE s.id = 1", after, limit,
    )
    head = cast("int", rows[0]["head"])
    return [event_from_row(r) for r in rows if r["sequence"] is not None], head


def _filter_sql(flt: EventFilter) -> tuple[str, list[Any]]:
    # Two shapes so each uses its index: (payment_id, sequence) or (tenant, sequence).
    # Tenant is always applied, so another tenant's payment id matches nothing.
    args: list[Any] = [flt.tenant]
    where = ["tenant = $1"]
    if flt.payment_id:
        args.append(flt.payment_id)
        where.append(f"payment_id = ${len(args)}")
    if flt.provider:
        args.append(flt.provider)
        where.append(f"provider = ${len(args)}")
    if flt.direction is not None:
        args.append(flt.direction.value)
        where.append(f"direction = ${len(args)}")
    if flt.statuses:
        args.append(sorted(s.value for s in flt.statuses))
        where.append(f"new_status = ANY(${len(args)}::text[])")
    return " AND ".join(where), args


async def read_page(conn: Conn, flt: EventFilter, after: int, *, limit: int,
                    window: int) -> Page:
    """Matching events after `after`, at most `limit`, looking at most `window` sequences
    ahead so a selective filter over a long log costs a bounded scan per page."""
    where, args = _filter_sql(flt)
    n = len(args)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        state = await log_state(conn)
        upper = min(after + window, state.head)
        rows = await conn.fetch(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE {where} "
            f"AND sequence > ${n + 1} AND sequence <= ${n + 2} ORDER BY sequence LIMIT ${n + 3}",
            *args, after, upper, limit,
        )
    events = [event_from_row(r) for r in rows]
    examined = events[-1].sequence if len(events) == limit else max(upper, after)
    return Page(events, examined, state.head, state.purged_through)


async def read_range(conn: Conn | asyncpg.Pool, after: int,
                     limit: int) -> list[StatusEvent]:
    rows = await conn.fetch(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE sequence > $1 ORDER BY sequence LIMIT $2",
        after, limit,
    )
    return [event_from_row(r) for r in rows]


# The newest event older than the cut-off, found by walking the primary key from the purged
# end: recorded_at grows with sequence (the relay stamps each batch after taking the log's
# lock), so the walk stops at the first young event and reads only what is about to go.
# Migration 0013 dropped the recorded_at index this used to need. One snapshot for both
# reads: when no event is young, every event is old.
_PURGE_CUT = """
SELECT CASE WHEN young.sequence IS NULL THEN (SELECT max(sequence) FROM events)
            ELSE young.sequence - 1 END
FROM event_log_state s
LEFT JOIN LATERAL (
    SELECT sequence FROM events
    WHERE sequence > s.purged_through AND recorded_at >= now() - $1::interval
    ORDER BY sequence LIMIT 1
) young ON true
WHERE s.id = 1
"""


async def purge_events(pool: asyncpg.Pool, older_than: timedelta, *, chunk: int = 10_000) -> int:
    """Delete events recorded more than `older_than` ago; return how many were deleted.

    Only a prefix of the log is ever removed (everything up to the newest old event), and
    purged_through advances in the same transaction, so readers see either the events or the
    OutOfRange, never a silent hole. Deletes in chunks to keep transactions short."""
    total = 0
    async with pool.acquire() as conn:
        cut: int | None = await conn.fetchval(_PURGE_CUT, older_than)
        if cut is None:
            return 0
        while True:
            async with conn.transaction():
                purged: int = await conn.fetchval(
                    "SELECT purged_through FROM event_log_state WHERE id = 1 FOR UPDATE")
                if purged >= cut:
                    return total
                upto = min(cut, purged + chunk)
                deleted = await conn.execute(
                    "DELETE FROM events WHERE sequence > $1 AND sequence <= $2", purged, upto)
                await conn.execute(
                    "UPDATE event_log_state SET purged_through = $1 WHERE id = 1", upto)
            total += int(deleted.split()[-1])


async def export_position(conn: Conn) -> int:
    return cast("int", await conn.fetchval(
        "SELECT greatest(exported_through, purged_through) FROM event_log_state WHERE id = 1"))


async def set_export_position(conn: Conn, sequence: int) -> None:
    await conn.execute(
        "UPDATE event_log_state SET exported_through = greatest(exported_through, $1) "
        "WHERE id = 1", sequence)


def event_from_row(row: asyncpg.Record) -> StatusEvent:
    return StatusEvent(
        sequence=row["sequence"],
        event_id=str(row["event_id"]) if isinstance(row["event_id"], uuid.UUID)
        else row["event_id"],
        tenant=row["tenant"],
        payment_id=row["payment_id"],
        direction=Direction(row["direction"]),
        provider=row["provider"],
        account=row["account"],
        old_status=Status(row["old_status"]) if row["old_status"] else None,
        new_status=Status(row["new_status"]),
        provider_status=row["provider_status"],
        provider_reference=row["provider_reference"],
        amount=Money.of(row["amount_minor"], row["currency"]),
        reason=row["reason"],
        message=row["message"],
        fulfilment=row["fulfilment"],
        needs_review=row["needs_review"],
        occurred_at=row["occurred_at"],
        provider_payload=row["provider_payload"],
        refund_id=row["refund_id"],
    )


def event_to_json(event: StatusEvent) -> dict[str, Any]:
    """The export form (NATS): plain JSON types, amounts in minor units."""
    return {
        "sequence": event.sequence,
        "event_id": event.event_id,
        "tenant": event.tenant,
        "payment_id": event.payment_id,
        "direction": event.direction.value,
        "provider": event.provider,
        "account": event.account,
        "old_status": event.old_status.value if event.old_status else "",
        "new_status": event.new_status.value,
        "provider_status": event.provider_status,
        "provider_reference": event.provider_reference,
        "amount_minor": event.amount.minor,
        "currency": event.amount.currency.code,
        "reason": event.reason,
        "message": event.message,
        "fulfilment": dict(event.fulfilment),
        "needs_review": event.needs_review,
        "occurred_at": event.occurred_at.isoformat(),
        "provider_payload": dict(event.provider_payload),
        "refund_id": event.refund_id,
    }

