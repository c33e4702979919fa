"""The idempotency keys repository: claim, look up with the payment a key made, release."""

from __future__ import annotations

from asyncpg import Record

from malipo.app.unit_of_work import IdempotencyRecord, KeyHolder
from malipo.store.rows import payment_fields, payment_from_row
from malipo.store.statements import Statements


def key_holder_select(tenant: str, key: str) -> str:
    """SQL: the key (`tenant`, `key` are placeholders) and the payment it made (same tenant),
    with whether its first provider call is recorded (submit_state SENT, or any news that
    moved it past PENDING). A replay's one read; also the tail of a create's claim."""
    return f"""
SELECT k.tenant AS k_tenant, k.key AS k_key, k.operation AS k_operation,
       k.fingerprint AS k_fingerprint, k.resource_id AS k_resource_id,
       {payment_fields("p")},
       (p.submit_state = 'SENT' OR p.status <> 'PENDING') AS submitted
FROM idempotency_keys k LEFT JOIN payments p ON p.id = k.resource_id AND p.tenant = k.tenant
WHERE k.tenant = {tenant} AND k.key = {key}"""


_KEY_HOLDER = key_holder_select("$1", "$2")


def key_holder_from_row(row: Record) -> KeyHolder:
    record = IdempotencyRecord(row["k_tenant"], row["k_key"], row["k_operation"],
                               row["k_fingerprint"], row["k_resource_id"])
    payment = payment_from_row(row) if row["id"] is not None else None
    return KeyHolder(record, payment, bool(row["submitted"]))


class PostgresIdempotencyKeys:
    def __init__(self, conn: Statements) -> None:
        self._conn = conn

    async def holder(self, tenant: str, key: str) -> KeyHolder | None:
        row = await self._conn.fetchrow(_KEY_HOLDER, tenant, key)
        return key_holder_from_row(row) if row is not None else None

    async def claim(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        inserted = await self._conn.fetchval_tx(
            "INSERT INTO idempotency_keys (tenant, key, operation, fingerprint, resource_id) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
            record.tenant, record.key, record.operation, record.fingerprint, record.resource_id,
        )
        if inserted:
            return None
        existing = await self.holder(record.tenant, record.key)
        assert existing is not None
        return existing.record

    async def release(self, tenant: str, key: str) -> None:
        await self._conn.execute_tx(
            "DELETE FROM idempotency_keys WHERE tenant = $1 AND key = $2", tenant, key)
