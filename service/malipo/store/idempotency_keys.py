"""The idempotency keys repository: claim, look up with the payment a key made, release."""

from __future__ import annotations

from malipo.app.unit_of_work import IdempotencyRecord, KeyHolder
from malipo.store.rows import payment_fields, payment_from_row
from malipo.store.statements import Statements

# A replay's one read: the key, and the payment it made (same tenant) with whether its first
# provider call is recorded (submit_state SENT, or any news that moved it past PENDING).
_KEY_HOLDER = f"""
SELECT k.tenant AS k_tenant, k.key AS k_key, k.operation AS k_operation,
       k.fingerprint AS k_fingerprint, k.resource_id AS k_resource_id,
       {payment_fields("p")},
       (p.submit_state = 'SENT' OR p.status <> 'PENDING') AS submitted
FROM idempotency_keys k LEFT JOIN payments p ON p.id = k.resource_id AND p.tenant = k.tenant
WHERE k.tenant = $1 AND k.key = $2
"""


class PostgresIdempotencyKeys:
    def __init__(self, conn: Statements) -> None:
        self._conn = conn

    async def holder(self, tenant: str, key: str) -> KeyHolder | None:
        row = await self._conn.fetchrow(_KEY_HOLDER, tenant, key)
        if row is None:
            return None
        record = IdempotencyRecord(row["k_tenant"], row["k_key"], row["k_operation"],
                                   row["k_fingerprint"], row["k_resource_id"])
        payment = payment_from_row(row) if row["id"] is not None else None
        return KeyHolder(record, payment, bool(row["submitted"]))

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
