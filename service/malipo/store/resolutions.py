"""asyncpg journal of operators' resolutions (ResolvePayment, ResolveRefund)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from malipo.domain.resolutions import Operator, Resolution
from malipo.domain.status import Status
from malipo.store.statements import Statements

_COLUMNS = ("id, payment_id, tenant, operator, key_id, from_status, to_status, review_reason, "
            "reason, evidence, idempotency_key, resolved_at, refund_id")


def resolution_from_row(row: asyncpg.Record) -> Resolution:
    return Resolution(
        id=row["id"], payment_id=row["payment_id"], tenant=row["tenant"],
        operator=Operator(row["operator"], row["key_id"]),
        from_status=Status(row["from_status"]), to_status=Status(row["to_status"]),
        review_reason=row["review_reason"], reason=row["reason"], evidence=row["evidence"],
        idempotency_key=row["idempotency_key"], resolved_at=row["resolved_at"],
        refund_id=row["refund_id"],
    )


class PostgresResolutions:
    def __init__(self, conn: Statements) -> None:
        self._conn = conn

    async def add(self, resolution: Resolution) -> None:
        r = resolution
        await self._conn.execute_tx(
            f"INSERT INTO payment_resolutions ({_COLUMNS}) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            r.id, r.payment_id, r.tenant, r.operator.name, r.operator.key_id,
            r.from_status.value, r.to_status.value, r.review_reason, r.reason, r.evidence,
            r.idempotency_key, r.resolved_at, r.refund_id)

    async def get(self, resolution_id: str) -> Resolution | None:
        row = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM payment_resolutions WHERE id = $1", resolution_id)
        return resolution_from_row(row) if row else None

    async def for_payment(self, payment_id: str) -> Sequence[Resolution]:
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM payment_resolutions WHERE payment_id = $1 "
            "ORDER BY resolved_at, id", payment_id)
        return [resolution_from_row(r) for r in rows]
