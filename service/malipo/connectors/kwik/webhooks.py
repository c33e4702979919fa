"""Kwik's batched webhooks -> one CallbackEvent per transaction.

Envelope (NOTES.md section 5): {"id", "type", "status", "results": [...], "created_at"}; the
seed .txt shows the same records under "transactions", so either key is read. Each result is
a transaction record like GET /transactions returns. A result that cannot be read is skipped
and the rest are kept: the skip is logged (masked) and listed under raw["webhook"]["skipped"]
of every event of that delivery, so the journal shows what was dropped and why.
Only transaction.* types describe transactions; other types (payment.updated, ...) carry
other records and produce no events (logged).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from malipo.app.connector import CallbackEvent
from malipo.connectors.kwik.mapping import (
    MalformedRecord,
    loads,
    parse_timestamp,
    plain,
    transaction_update,
)
from malipo.domain.errors import CallbackRejected
from malipo.domain.status import Direction
from malipo.redaction import mask_text

log = logging.getLogger(__name__)


def parse_webhook(body: bytes, status_name: Callable[[str], str | None]) -> list[CallbackEvent]:
    try:
        envelope = loads(body)
    except ValueError:
        raise CallbackRejected("Kwik webhook body is not JSON") from None
    if not isinstance(envelope, Mapping):
        raise CallbackRejected("Kwik webhook body is not a JSON object")
    env: Mapping[str, Any] = envelope  # type: ignore[assignment]
    webhook_id = env.get("id")
    if not isinstance(webhook_id, str | int) or isinstance(webhook_id, bool) or webhook_id == "":
        raise CallbackRejected("Kwik webhook has no id")
    results = env.get("results", env.get("transactions"))
    if not isinstance(results, list):
        raise CallbackRejected("Kwik webhook has no results array")
    kind = str(env.get("type") or "transaction.updated")
    if not kind.startswith("transaction."):
        log.info("kwik webhook %s of type %s ignored: it carries no transactions",
                 webhook_id, mask_text(kind))
        return []
    created = _created_at(env.get("created_at"))
    parsed: list[tuple[int, Mapping[str, Any]]] = []
    skipped: list[dict[str, object]] = []
    for index, result in enumerate(results):  # type: ignore[misc]
        try:
            if not isinstance(result, Mapping):
                raise MalformedRecord("result is not an object")
            record: Mapping[str, Any] = result  # type: ignore[assignment]
            transaction_update(record, None)  # validates reference, amount, timestamps
            parsed.append((index, record))
        except MalformedRecord as exc:
            skipped.append({"index": index, "error": str(exc)})
            log.warning("kwik webhook %s: result %d skipped: %s", webhook_id, index,
                        mask_text(str(exc)))
    summary: dict[str, object] = {
        "id": str(webhook_id), "type": kind, "status": plain(env.get("status")),
        "created_at_utc": created, "results": len(results), "skipped": skipped,
    }
    events: list[CallbackEvent] = []
    for index, record in parsed:
        lookup_id = str(record.get("transaction_status_lookups_id") or "")
        update = transaction_update(record, status_name(lookup_id))
        reference = str(record["transaction_reference"])
        events.append(CallbackEvent(
            update=update,
            payment_id=reference,
            event_key=f"{webhook_id}:{reference}",
            direction=Direction.COLLECTION,
            raw={"result": plain(dict(record)), "index": index, "webhook": summary},
        ))
    return events


def _created_at(value: object) -> str:
    try:
        moment = parse_timestamp(value)
    except MalformedRecord:
        return ""
    return moment.isoformat() if moment is not None else ""
