"""Kwik's webhooks -> one CallbackEvent per transaction.

The document (kwik-transactions.txt, Webhooks) shows the body `{"transactions": [...]}`:
records shaped like GET /transactions returns, sent as an array, with no webhook id.
NOTES.md section 5 describes an envelope `{"id", "type", "status", "results": [...],
"created_at"}`; that is read too. An event is identified by what it says about its
transaction (Kwik's transaction id, status lookup id and status_changed_at), so a
redelivery is a duplicate whichever envelope carried it. A record that cannot be read is
skipped and the rest are kept: the skip is logged (masked) and listed under
raw["webhook"]["skipped"] of every event of that delivery. Only transaction.* types carry
transactions; other types (payment.updated, ...) produce no events (logged).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from malipo.app.connector import CallbackEvent
from malipo.connectors.exact_json import loads, plain
from malipo.connectors.kwik.mapping import (
    MalformedRecord,
    parse_timestamp,
    transaction_update,
)
from malipo.domain.errors import CallbackRejected
from malipo.domain.status import Direction
from malipo.redaction import mask_text

log = logging.getLogger(__name__)


def parse_webhook(body: bytes, status_name: Callable[[str], str | None]) -> list[CallbackEvent]:
    """`status_name` gives a cached name or None; None leaves the status open (the
    processor then asks Kwik with fetch_status)."""
    try:
        envelope = loads(body)
    except (ValueError, UnicodeDecodeError):
        raise CallbackRejected("Kwik webhook body is not JSON") from None
    if not isinstance(envelope, Mapping):
        raise CallbackRejected("Kwik webhook body is not a JSON object")
    env: Mapping[str, Any] = envelope  # type: ignore[assignment]
    results = env.get("transactions", env.get("results"))
    if not isinstance(results, list):
        raise CallbackRejected("Kwik webhook has no transactions array")
    kind = str(env.get("type") or "transaction.updated")
    label = mask_text(str(env.get("id") or "(no id)"))
    if not kind.startswith("transaction."):
        log.info("kwik webhook %s of type %s ignored: it carries no transactions",
                 label, mask_text(kind))
        return []
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
            log.warning("kwik webhook %s: result %d skipped: %s", label, index,
                        mask_text(str(exc)))
    summary: dict[str, object] = {
        "id": plain(env.get("id")), "type": kind, "status": plain(env.get("status")),
        "created_at_utc": _created_at(env.get("created_at")), "results": len(results),
        "skipped": skipped,
    }
    events: list[CallbackEvent] = []
    for index, record in parsed:
        lookup_id = str(record.get("transaction_status_lookups_id") or "")
        update = transaction_update(record, status_name(lookup_id))
        reference = str(record["transaction_reference"])
        events.append(CallbackEvent(
            update=update,
            payment_id=reference,
            event_key=_event_key(record, reference, lookup_id),
            direction=Direction.COLLECTION,
            raw={"result": plain(dict(record)), "index": index, "webhook": summary},
        ))
    return events


def _event_key(record: Mapping[str, Any], reference: str, lookup_id: str) -> str:
    """One transaction in one status since one moment: the same news, however delivered."""
    transaction = str(record.get("id") or reference)
    return f"{transaction}:{lookup_id}:{record.get('status_changed_at') or ''}"


def _created_at(value: object) -> str:
    try:
        moment = parse_timestamp(value)
    except MalformedRecord:
        return ""
    return moment.isoformat() if moment is not None else ""
