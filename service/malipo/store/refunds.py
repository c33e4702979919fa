"""asyncpg repository of refunds: the capped insert, the guarded change, their events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from malipo.app.unit_of_work import Schedule
from malipo.domain.money import Money
from malipo.domain.payments import Payment
from malipo.domain.refunds import Refund, RefundTotals
from malipo.domain.status import Status
from malipo.store.rows import event_payload
from malipo.store.statements import Statements

_COLUMNS = ("id, payment_id, tenant, amount_minor, currency, status, reason, "
            "provider_reference, provider_status, failure_reason, failure_message, "
            "idempotency_key, created_at, updated_at")
REFUND_FIELDS = _COLUMNS + ", needs_review, review_reason"
_READ = [c.strip() for c in REFUND_FIELDS.split(",")]


def refund_fields(alias: str, prefix: str) -> str:
    """A read of refund rows (under `alias`) beside columns of the same names (a payment's):
    each named `prefix` + column, for refund_from_row(row, prefix)."""
    return ", ".join(f"{alias}.{c} AS {prefix}{c}" for c in _READ)

# The cap in the inserting statement: it runs after the caller took the payment's row lock,
# so its snapshot holds every refund committed before ours and none can slip in beside it.
_INSERT_WITHIN_CAP = f"""
WITH held AS (
    SELECT coalesce(sum(amount_minor), 0)::bigint AS total FROM refunds
    WHERE payment_id = $2 AND status <> 'FAILED'
), inserted AS (
    INSERT INTO refunds ({_COLUMNS}, next_poll_at)
    SELECT $1, $2, $3, $4::bigint, $5, $6, $7, '', '', '', '', $8, $9, $9, $12 FROM held
    WHERE held.total + $4::bigint <= $10::bigint
    RETURNING id
), event AS (INSERT INTO outbox (payload) SELECT $11::jsonb FROM inserted)
SELECT count(*) FROM inserted
"""

_UPDATE_WITH_EVENT = """
WITH updated AS (
    UPDATE refunds SET status = $2, provider_reference = $3, provider_status = $4,
        failure_reason = $5, failure_message = $6, updated_at = $7,
        needs_review = $13, review_reason = $14,
        next_poll_at = CASE WHEN $10::boolean THEN $11::timestamptz ELSE next_poll_at END,
        poll_attempts = CASE WHEN $12::boolean THEN 0 ELSE poll_attempts END
    WHERE id = $1 AND status = $8
    RETURNING id
), event AS (INSERT INTO outbox (payload) SELECT $9::jsonb FROM updated)
SELECT count(*) FROM updated
"""

# Status untouched and no event of the refund's own: the payment's review flag, written
# beside it, carries the event (app/refund_polls.py).
_FLAG = """
UPDATE refunds SET needs_review = true, review_reason = $2, updated_at = $3,
                   next_poll_at = NULL
WHERE id = $1 AND status = $4
"""


def refund_event(payment: Payment, before: Status | None, refund: Refund, *, actor: str,
                 provider_payload: Mapping[str, object] | None = None,
                 reason: str = "") -> dict[str, Any]:
    """The outbox row of a refund's change: the payment's event shape, with the refund's
    statuses, amount and id (StatusEvent.refund_id); `reason` ("": the refund's
    failure_reason)."""
    payload = event_payload(payment, payment, reason="", actor=actor,
                            provider_payload=provider_payload)
    payload.update(
        old_status=before.value if before is not None else "", new_status=refund.status.value,
        amount_minor=refund.amount.minor, currency=refund.amount.currency.code,
        provider_status=refund.provider_status,
        provider_reference=refund.provider_reference or payment.provider_reference,
        reason=reason or refund.failure_reason,
        message=refund.failure_message or refund.reason,
        fulfilment={}, occurred_at=refund.updated_at.isoformat(), refund_id=refund.id,
    )
    return payload


def refund_from_row(row: asyncpg.Record, prefix: str = "") -> Refund:
    def col(name: str) -> Any:
        return row[prefix + name]

    return Refund(
        id=col("id"), payment_id=col("payment_id"), tenant=col("tenant"),
        amount=Money.of(col("amount_minor"), col("currency")), status=Status(col("status")),
        reason=col("reason"), provider_reference=col("provider_reference"),
        provider_status=col("provider_status"), failure_reason=col("failure_reason"),
        failure_message=col("failure_message"), idempotency_key=col("idempotency_key"),
        created_at=col("created_at"), updated_at=col("updated_at"),
        needs_review=col("needs_review"), review_reason=col("review_reason"),
    )


class PostgresRefunds:
    def __init__(self, conn: Statements) -> None:
        self._conn = conn
        self.wrote_events = False  # an outbox row is part of this transaction

    async def add(self, refund: Refund, payment: Payment, *, actor: str,
                  first_poll: datetime) -> bool:
        r = refund
        added = await self._conn.fetchval_tx(
            _INSERT_WITHIN_CAP, r.id, r.payment_id, r.tenant, r.amount.minor,
            r.amount.currency.code, r.status.value, r.reason, r.idempotency_key, r.created_at,
            payment.amount.minor, refund_event(payment, None, r, actor=actor), first_poll)
        self.wrote_events |= added == 1
        return added == 1

    async def write(self, before: Refund, after: Refund, payment: Payment, *, actor: str,
                    provider_payload: Mapping[str, object],
                    schedule: Schedule | None = None, reason: str = "") -> bool:
        a = after
        updated = await self._conn.fetchval_tx(
            _UPDATE_WITH_EVENT, a.id, a.status.value, a.provider_reference, a.provider_status,
            a.failure_reason, a.failure_message, a.updated_at, before.status.value,
            refund_event(payment, before.status, a, actor=actor,
                         provider_payload=provider_payload, reason=reason),
            schedule is not None, schedule.next_poll_at if schedule else None,
            schedule is not None and schedule.reset_attempts, a.needs_review, a.review_reason)
        self.wrote_events |= updated == 1
        return updated == 1

    async def flag(self, flagged: Refund) -> bool:
        done = await self._conn.execute_tx(_FLAG, flagged.id, flagged.review_reason,
                                           flagged.updated_at, flagged.status.value)
        return done == "UPDATE 1"

    async def get(self, refund_id: str, *, tenant: str) -> Refund | None:
        row = await self._conn.fetchrow(
            f"SELECT {REFUND_FIELDS} FROM refunds WHERE id = $1 AND tenant = $2", refund_id, tenant)
        return refund_from_row(row) if row else None

    async def for_payment(self, payment_id: str) -> Sequence[Refund]:
        rows = await self._conn.fetch(
            f"SELECT {REFUND_FIELDS} FROM refunds WHERE payment_id = $1 ORDER BY created_at, id",
            payment_id)
        return [refund_from_row(r) for r in rows]

    async def totals(self, payment_id: str) -> RefundTotals:
        row = await self._conn.fetchrow(
            "SELECT coalesce(sum(amount_minor) FILTER (WHERE status = 'SUCCEEDED'), 0) AS done, "
            "coalesce(sum(amount_minor) FILTER (WHERE status <> 'FAILED'), 0) AS held "
            "FROM refunds WHERE payment_id = $1", payment_id)
        assert row is not None
        return RefundTotals(refunded=int(row["done"]), held=int(row["held"]))
