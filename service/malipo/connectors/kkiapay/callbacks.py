"""KKiaPay webhooks: authenticated by a shared-secret header (signing.py), a body that is a hint.

The documents give no webhook body. This reads the fields KKiaPay's webhooks are assumed to
carry (transactionId, isPaymentSucces or event, stateData, amount, failureCode); only
`transactionId` is required, and the connector declares callbacks_need_confirmation, so the
service replaces every claim with a status call before applying anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from malipo.app.connector import CallbackEvent, InboundCallback
from malipo.connectors.exact_json import loads, plain
from malipo.domain.errors import CallbackRejected
from malipo.domain.payments import ProviderUpdate
from malipo.domain.status import Status

from . import signing
from .mapping import WEBHOOK_EVENTS, failure_reason, read_amount, unlisted


def verify(callback: InboundCallback, secrets: tuple[str, ...]) -> None:
    signing.verify(callback.headers, secrets)


def _claim(body: Mapping[str, Any]) -> Status | None:
    flag = body.get("isPaymentSucces", body.get("isPaymentSuccess"))  # KKiaPay's spelling first
    if isinstance(flag, bool):
        return Status.SUCCEEDED if flag else Status.FAILED
    event = str(body.get("event", "")).strip().lower()
    if not event:
        return None
    status = WEBHOOK_EVENTS.get(event)
    return status if status is not None else unlisted("webhook event", event)


def parse(callback: InboundCallback, currency: str) -> list[CallbackEvent]:
    try:
        body = loads(callback.body)
    except (ValueError, UnicodeDecodeError):
        raise CallbackRejected("KKiaPay webhook body is not JSON") from None
    if not isinstance(body, dict):
        raise CallbackRejected("KKiaPay webhook body is not a JSON object")
    data: dict[str, Any] = body
    transaction_id = data.get("transactionId")
    if not isinstance(transaction_id, str | int) or isinstance(transaction_id, bool) or not str(
        transaction_id
    ).strip():
        raise CallbackRejected("KKiaPay webhook without a transactionId")
    tx_id = str(transaction_id).strip()
    claim = _claim(data)
    state = data.get("stateData")
    failure_code = str(data.get("failureCode") or "")
    failure_message = str(data.get("failureMessage") or "")
    update = ProviderUpdate(
        status=claim,
        provider_reference=tx_id,
        provider_status=str(data.get("event") or ""),
        provider_message=failure_message,
        failure_reason=failure_reason(failure_code) if claim is Status.FAILED else "",
        failure_message=failure_message if claim is Status.FAILED else "",
        amount=read_amount(data.get("amount"), currency),
        raw=plain(data),
    )
    event = str(data.get("event") or (claim.value if claim else "unknown"))
    return [CallbackEvent(
        update=update,
        payment_id=state.strip() if isinstance(state, str) else "",
        event_key=f"{tx_id}:{event}",
        raw=plain(data),
    )]
