"""KKiaPay (Benin, XOF; MTN Mobile Money and Moov/Flooz): widget payments verified server-side.

Flows
- Collection: nothing is sent to KKiaPay. create_payment answers ACTION_REQUIRED with a WIDGET
  next action (public key, amount, our payment id as the widget's `data`, sandbox flag). The
  front end opens KKiaPay's widget and gets a transaction id; confirm() (or a webhook) brings
  it back and `POST /api/v1/transactions/status` decides: only SUCCESS for the transaction id
  we asked about, with our amount (and our currency, when one is given) is SUCCEEDED. The
  documented answer (type, status, source, performed_at, amount) names neither the
  transaction nor our payment; a `state` (the widget's `data`) or `transactionId` KKiaPay adds
  must agree, but neither is required. A mismatch is never credited: a transaction that is
  not ours makes confirm() raise ProviderRejectedRequest (TRANSACTION_MISMATCH); one with
  another amount or currency comes back with status None, failure_reason *_MISMATCH and the
  claimed amount, which the service flags. The verified transaction id is the update's
  provider_reference, so the service refuses one already credited to another payment.
- Refund: `POST /api/v1/transactions/revert`; REVERSED only on a success code.
- Payout: not offered. The document makes a merchant-initiated transfer a dashboard action,
  and the admin API's payout schedule (NOTES.md section 3) sweeps the merchant's whole balance
  to one destination: it is not a transfer to one customer, so it must never carry a payout.
- Webhooks: `x-kkiapay-secret` header (a shared secret, not a signature), so every webhook is
  a trigger the service confirms with a status call (callbacks_need_confirmation).

Where the document (a five-line page) and NOTES.md are silent, this connector chooses, and
each choice is a setting (settings.py) or stated here:
- Bodies are JSON (Node.js SDK); headers use the Python SDK's names X-API-KEY, X-PRIVATE-KEY,
  X-SECRET-KEY. Unknown transaction: HTTP 404 -> ProviderNotFound; 401/403: keys refused.
- KKiaPay cannot be searched by our id, so fetch_status needs the transaction id (no opinion
  before one is known).
- Status answers carry no currency (KKiaPay is XOF-only): the account's `currency` setting
  is assumed, and a `currency` field, when present, must match.
- A FAILED attempt fails the payment (`failed_attempt=fail`), or leaves it ACTION_REQUIRED for
  another widget attempt (`failed_attempt=retry`).
- The revert answer's shape is not documented: `code` in `revert_success_codes` (SUCCESS)
  means REVERSED; another 2xx code is no opinion; a 4xx is a refusal (REFUND_REFUSED). After a
  revert the status call is assumed to say REVERTED (`reverted_status`).
- Cancel is unsupported: the widget has no server-side session to cancel; an abandoned
  payment expires through the reconciler's expiry rule.
- Every callback we could journal is answered 200 (KKiaPay retries non-2xx five times, which
  cannot help a body we could not parse); a wrong secret is answered 401.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from malipo.app.catalogue import ProviderCatalogue, load_catalogue
from malipo.app.connector import (
    CallbackAnswer,
    CallbackEvent,
    CallbackOutcome,
    CallContext,
    Capabilities,
    Confirmation,
    InboundCallback,
    ProviderAccount,
)
from malipo.connectors.exact_json import plain
from malipo.connectors.http import ProviderHttp
from malipo.domain.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidRequest,
    ProviderNotFound,
    ProviderOutcomeUnknown,
    ProviderRejectedRequest,
    ProviderUnavailable,
    Unsupported,
)
from malipo.domain.payments import Payment, ProviderUpdate
from malipo.domain.status import Direction, Status

from . import callbacks
from .client import Answer, KkiapayClient
from .mapping import (
    REFERENCE_MISMATCH,
    provider_text,
    read_transaction,
    verified_update,
    whole_francs,
    widget_action,
)
from .settings import KkiapaySettings

PAYOUTS_UNSUPPORTED = (
    "KKiaPay payouts are not offered: KKiaPay pays a customer only from its dashboard, and its "
    "API's payout schedule sweeps the whole merchant balance, not one transfer")


CATALOGUE = load_catalogue(Path(__file__).with_name("catalogue.toml"))


class KkiapayConnector:
    provider = "kkiapay"
    capabilities = Capabilities(
        collections=True, payouts=False, refunds=True, cancellations=False,
        status_polling=True, callbacks=True, status_by_our_reference=False,
        idempotent_submit=False, callbacks_need_confirmation=True,
    )

    def __init__(self, account: ProviderAccount, *, http: ProviderHttp | None = None) -> None:
        self.account = account
        self.settings = KkiapaySettings.from_account(account)
        self._client = KkiapayClient(self.settings, http)

    def catalogue(self) -> ProviderCatalogue:
        return CATALOGUE

    def validate(self, payment: Payment) -> None:
        """KKiaPay takes whole francs."""
        whole_francs(payment.amount)

    async def create_payment(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        """No HTTP call: KKiaPay learns of the payment when the customer opens the widget."""
        return ProviderUpdate(
            status=Status.ACTION_REQUIRED,
            next_action=widget_action(payment, public_key=self.settings.public_key,
                                      sandbox=self.settings.sandbox,
                                      callback_url=self.settings.widget_callback_url),
        )

    async def create_payout(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        raise Unsupported(PAYOUTS_UNSUPPORTED)

    async def confirm(self, payment: Payment, confirmation: Confirmation,
                      ctx: CallContext) -> ProviderUpdate:
        """The widget's transaction id, verified server-side before anything is credited."""
        if payment.direction is not Direction.COLLECTION:
            raise Unsupported("KKiaPay payouts have nothing to confirm")
        transaction_id = confirmation.provider_transaction_id.strip()
        if not transaction_id:
            raise InvalidRequest(FieldViolation(
                "provider_transaction_id",
                "rule required_field: the transaction id KKiaPay's widget returned",
            ))
        try:
            update = await self._verify(payment, transaction_id, ctx)
        except ProviderNotFound:
            raise ProviderRejectedRequest(f"KKiaPay knows no transaction {transaction_id}",
                                          reason="TRANSACTION_NOT_FOUND") from None
        if update.failure_reason == REFERENCE_MISMATCH:
            # Another payment's (or nobody's) transaction: refuse the confirmation outright;
            # our payment has nothing to flag. Amount or currency mismatches under OUR
            # reference come back as an update, which the service flags for review.
            raise ProviderRejectedRequest(update.failure_message, reason="TRANSACTION_MISMATCH")
        return update

    async def fetch_status(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        if not payment.provider_reference:
            return ProviderUpdate(status=None, provider_message=(
                "no KKiaPay transaction id yet; KKiaPay cannot be searched by our reference"))
        return await self._verify(payment, payment.provider_reference, ctx)

    async def _verify(self, payment: Payment, transaction_id: str,
                      ctx: CallContext) -> ProviderUpdate:
        answer = await self._client.transaction_status(transaction_id, ctx)
        if not answer.ok:
            raise ProviderRejectedRequest(
                f"KKiaPay refused the status call: {provider_text(answer.body) or answer.status}")
        body = self._object(answer, mutating=False)
        tx = read_transaction(body, transaction_id, self.settings.currency)
        return verified_update(payment, tx, retry_failed=self.settings.failed_attempt == "retry",
                               reverted=self.settings.reverted_status)

    async def refund(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        if payment.direction is not Direction.COLLECTION:
            raise Unsupported("KKiaPay reverts collections only")
        if not payment.provider_reference:
            raise FailedPrecondition("no verified KKiaPay transaction to revert")
        answer = await self._client.revert(payment.provider_reference, ctx)
        body = answer.body if isinstance(answer.body, dict) else {}
        text = provider_text(body)
        if not answer.ok:
            raise ProviderRejectedRequest(
                f"KKiaPay refused the revert: {text or answer.status}", reason="REFUND_REFUSED")
        code = str(body.get("code") or body.get("status") or "").upper()
        confirmed = code in self.settings.revert_success_codes
        return ProviderUpdate(
            status=Status.REVERSED if confirmed else None,
            provider_reference=payment.provider_reference,
            provider_status=code, provider_message=str(body.get("description") or text),
            raw=plain(body),
        )

    async def cancel(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        raise Unsupported("KKiaPay has no cancel: refund a successful payment instead")

    def verify_callback(self, callback: InboundCallback) -> None:
        callbacks.verify(callback, self.settings.webhook_secrets)

    def parse_callback(self, callback: InboundCallback) -> list[CallbackEvent]:
        return callbacks.parse(callback, self.settings.currency)

    def callback_answer(self, outcome: CallbackOutcome) -> CallbackAnswer:
        if outcome is CallbackOutcome.REJECTED:
            return CallbackAnswer(401, b"unauthorized")
        return CallbackAnswer(200, b"OK")

    @staticmethod
    def _object(answer: Answer, *, mutating: bool) -> dict[str, Any]:
        if not isinstance(answer.body, dict):
            text = "KKiaPay answered with JSON that is not an object"
            raise ProviderOutcomeUnknown(text) if mutating else ProviderUnavailable(text)
        return answer.body

    async def close(self) -> None:
        await self._client.close()
