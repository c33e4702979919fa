"""JamboPay's callback: an unsigned JSON notice sent to the presentment's CallbackUrl.

Shape (NOTES.md section 4): TransactionId, MeterNumber, PhoneNumber, Amount,
TransactionStatus ("completed" when the third party vended, "cancelled" when it failed and the
agent float was reversed), ThirdPartyRef, Action ("Token Vending" or "Agent Refunded").

Nothing in it can be verified, so it is only a claim: Capabilities.callbacks_need_confirmation
tells the service to ask fetch_status before applying anything. It also carries no token, so
the token reaches the payout through that confirming status call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from malipo.app.connector import CallbackEvent, InboundCallback
from malipo.connectors.exact_json import loads, plain
from malipo.connectors.jambopay import signing
from malipo.connectors.jambopay.mapping import (
    AGENT_REFUNDED_REASON,
    FAILURE_REASON,
    money_of,
    status_of,
    text,
    unlisted,
)
from malipo.domain.errors import CallbackRejected, ProviderRejectedRequest
from malipo.domain.payments import ProviderUpdate
from malipo.domain.status import Status

TOKEN_VENDING = "Token Vending"  # noqa: S105 - a callback Action, not a secret
AGENT_REFUNDED = "Agent Refunded"

# Every Action the document names; None: the TransactionStatus decides.
ACTIONS: Mapping[str, Status | None] = {
    TOKEN_VENDING: None,
    AGENT_REFUNDED: Status.REVERSED,
}
_ACTIONS_FOLDED = {name.casefold(): status for name, status in ACTIONS.items()}


def verify(callback: InboundCallback, allowed: Sequence[signing.Network]) -> None:
    signing.check_source(callback.remote, allowed)


def parse(callback: InboundCallback, currency: str) -> list[CallbackEvent]:
    try:
        data: Any = loads(callback.body)
    except ValueError:
        raise CallbackRejected("JamboPay callback body is not JSON") from None
    if not isinstance(data, Mapping):
        raise CallbackRejected("JamboPay callback body is not a JSON object")
    body: Mapping[str, Any] = data
    txid = text(body.get("TransactionId") or body.get("TransactionID"))
    if not txid:
        raise CallbackRejected("JamboPay callback has no TransactionId")
    raw_status = text(body.get("TransactionStatus"))
    action = text(body.get("Action"))
    status = _status(raw_status, action)
    reason = AGENT_REFUNDED_REASON if status is Status.REVERSED else FAILURE_REASON.get(
        status, "")
    try:
        amount = money_of(body.get("Amount"), currency)
    except ProviderRejectedRequest as exc:
        raise CallbackRejected(f"JamboPay callback amount: {exc.message}") from None
    update = ProviderUpdate(
        status=status,
        provider_reference=txid,
        provider_status=raw_status,
        provider_message=action,
        failure_reason=reason,
        failure_message=f"JamboPay callback: {action or raw_status}" if reason else "",
        fulfilment={"third_party_reference": ref} if (
            ref := text(body.get("ThirdPartyRef"))) else {},
        amount=amount,
        raw=plain(body),
    )
    return [CallbackEvent(update=update, event_key=f"{txid}:{action}:{raw_status}".lower(),
                          raw=plain(body))]


def _status(raw_status: str, action: str) -> Status:
    """"Agent Refunded" is the money coming back after the fact: a succeeded payout is
    REVERSED (one that never succeeded is refused that move by the transition table, and the
    confirming status call says FAILED or CANCELLED). An Action the document does not name
    makes the whole claim UNKNOWN, whatever its TransactionStatus says."""
    if not action:
        return status_of(raw_status)
    folded = action.casefold()
    if folded not in _ACTIONS_FOLDED:
        return unlisted("callback Action", action)
    return _ACTIONS_FOLDED[folded] or status_of(raw_status)
