"""The exchange log repository: what was said to a provider and what it called back."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from malipo.app.connector import Exchange
from malipo.app.unit_of_work import ExchangeKind, ExchangeRecord
from malipo.domain.payments import Payment
from malipo.redaction import mask_body, mask_text
from malipo.store.statements import Statements


class PostgresExchangeLog:
    def __init__(self, conn: Statements) -> None:
        self._conn = conn

    async def add(self, payment: Payment, exchanges: Sequence[Exchange]) -> None:
        if not exchanges:
            return
        await self._conn.executemany_tx(
            "INSERT INTO provider_exchanges (payment_id, tenant, provider, operation, method, "
            "path, request_body, status, response_body, latency_ms, error, at) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
            [(payment.id, payment.tenant, payment.provider, e.operation, e.method, e.path,
              e.request_body, e.status, e.response_body, e.latency_ms, e.error, e.at)
             for e in exchanges],
        )

    async def for_payment(self, payment: Payment) -> Sequence[ExchangeRecord]:
        requests = await self._conn.fetch(
            "SELECT operation, method, path, request_body, status, response_body, latency_ms, "
            "error, at, id FROM provider_exchanges WHERE payment_id = $1 ORDER BY id",
            payment.id)
        callbacks = await self._conn.fetch(_CALLBACKS_OF_PAYMENT, payment.provider,
                                           payment.account, payment.id,
                                           payment.provider_reference,
                                           payment.id.encode())
        records: list[tuple[datetime, int, int, ExchangeRecord]] = [(
            r["at"], 0, r["id"], ExchangeRecord(
            ExchangeKind.REQUEST, r["operation"], r["method"], r["path"], r["request_body"],
            r["status"], r["response_body"], r["latency_ms"], r["at"], r["error"],
        )) for r in requests]
        records += [(r["received_at"], 1, r["id"], _callback_record(r)) for r in callbacks]
        records.sort(key=lambda item: item[:3])
        return [record for *_, record in records]


# A callback belongs to a payment through the events it carried (by our id, or by the
# provider's reference while it was deferred), plus byte-identical re-deliveries of those
# (duplicates never get an event row). A delivery refused before parsing (forged, malformed)
# is matched by our id appearing in its body; its body is not shown, since an unverified or
# batched body may speak of other payments.
_CALLBACKS_OF_PAYMENT = """
WITH mine AS (
    SELECT e.journal_id, e.event FROM callback_events e
    WHERE e.provider = $1 AND e.account = $2
      AND (e.payment_id = $3 OR ($4 <> '' AND e.provider_reference = $4))
)
SELECT j.id, j.provider, j.account, j.received_at, j.body, j.outcome, j.detail,
       (SELECT count(*) FROM callback_events x WHERE x.journal_id = j.id) AS carried,
       (SELECT m.event FROM mine m WHERE m.journal_id = j.id LIMIT 1) AS event
FROM callback_journal j
WHERE j.provider = $1 AND j.account = $2 AND (
    j.id IN (SELECT journal_id FROM mine)
    OR j.body_sha256 IN (SELECT jj.body_sha256 FROM callback_journal jj
                         WHERE jj.id IN (SELECT journal_id FROM mine))
    OR (j.outcome IN ('REJECTED', 'INVALID') AND position($5::bytea IN j.body) > 0)
)
ORDER BY j.id
"""


def _callback_record(row: asyncpg.Record) -> ExchangeRecord:
    outcome, carried = str(row["outcome"]), int(row["carried"])
    if outcome in ("REJECTED", "INVALID"):
        body = ""
    elif carried > 1:
        # A batched delivery: show only what it said about this payment.
        body = mask_body(json.dumps({"batched_events": carried, **dict(row["event"] or {})}))
    else:
        body = mask_body(bytes(row["body"]))
    detail = outcome + (f": {mask_text(row['detail'])}" if row["detail"] else "")
    return ExchangeRecord(
        ExchangeKind.CALLBACK, "callback", "POST",
        f"/callbacks/{row['provider']}/{row['account']}", body, 0, "", 0.0,
        row["received_at"], detail)
