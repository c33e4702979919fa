"""Paykassma M-Pesa (Kenya): API deposits, the hosted payment window, withdrawals, postbacks.

Source: paykassma-mpesa.txt and NOTES.md section 2. The account's settings, and the defaults
chosen where the document is silent, are in settings.py.

Silences of the document, and what this connector does:
- No status endpoint: capabilities.status_polling is False and fetch_status raises
  Unsupported; payments settle by postback, and the service's expiry rule ends the rest
  (a deposit the customer never approves gets no postback at all).
- No deposit status in postbacks: a deposit postback means credited (SUCCEEDED).
- Behaviour on a repeated custom_transaction_id is not given ("Must be unique"), so submits
  are not declared idempotent: after an unknown outcome the service must not resend blindly.
- Hosted flow: when the payment's method is HOSTED, its channel is "mpesa_hosted" or
  provider_fields["flow"] == "hosted", no API call is made; the payment waits in
  ACTION_REQUIRED with a REDIRECT to the plugin link, and the postback settles it.
"""

from __future__ import annotations

import json
from pathlib import Path

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
from malipo.connectors.http import ProviderHttp
from malipo.connectors.paykassma import callbacks, mapping, signing
from malipo.connectors.paykassma.client import PaykassmaClient
from malipo.connectors.paykassma.settings import PaykassmaSettings
from malipo.domain.errors import ProviderOutcomeUnknown, Unsupported
from malipo.domain.payments import Payment, ProviderUpdate
from malipo.domain.status import Direction, Method, Status

CATALOGUE = load_catalogue(Path(__file__).with_name("catalogue.toml"))
HOSTED_CHANNEL = "mpesa_hosted"
OK_BODY = b'{"status":"ok"}'


def _json_answer(status: int, body: dict[str, str]) -> CallbackAnswer:
    return CallbackAnswer(status, json.dumps(body, separators=(",", ":")).encode(),
                          "application/json")


class PaykassmaConnector:
    provider = "paykassma"
    capabilities = Capabilities(
        collections=True, payouts=True, refunds=False, cancellations=False,
        status_polling=False, callbacks=True, status_by_our_reference=False,
        idempotent_submit=False, callbacks_need_confirmation=False,
    )

    def __init__(self, account: ProviderAccount) -> None:
        self.account = account
        self.settings = PaykassmaSettings.from_account(account)  # misspelt names fail here
        self._sign_withdrawal = signing.withdrawal_signer(
            self.settings.withdrawal_signature_algorithm)
        http = ProviderHttp(provider="paykassma", timeout_s=self.settings.timeout_s)
        self._client = PaykassmaClient(self.settings.api_url, http)

    def catalogue(self) -> ProviderCatalogue:
        return CATALOGUE

    def is_hosted(self, payment: Payment) -> bool:
        return (payment.method is Method.HOSTED or payment.channel == HOSTED_CHANNEL
                or payment.provider_fields.get("flow", "").lower() == "hosted")

    def validate(self, payment: Payment) -> None:
        """What the catalogue cannot say: the 2547 prefix, the label length, whole units
        (also a catalogue multiple, re-checked because the wire format depends on it)."""
        mapping.whole_amount(payment.amount)
        mapping.label(payment)
        payout = payment.direction is Direction.PAYOUT
        if payout or payment.customer.phone_number or not self.is_hosted(payment):
            mapping.msisdn(payment.customer.phone_number)

    async def create_payment(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        self.validate(payment)
        if self.is_hosted(payment):
            url = mapping.hosted_url(payment, self.settings.require("plugin_url"),
                                     lang=self.settings.lang, page_ids=self.settings.page_ids)
            return mapping.hosted_update(url)
        answer = await self._client.create_deposit(
            mapping.deposit_body(payment), self.settings.require("pluginapi_secret"), ctx)
        return _settled(mapping.read_answer(answer, reference=""), "create_deposit")

    async def create_payout(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        self.validate(payment)
        fields = mapping.withdrawal_fields(payment, is_test=self.settings.is_test)
        fields["signature"] = self._sign_withdrawal(
            fields, self.settings.require("withdrawal_private_key"))
        answer = await self._client.create_withdrawal(fields, ctx)
        return _settled(mapping.read_answer(answer, reference=payment.id), "create_withdrawal")

    async def confirm(self, payment: Payment, confirmation: Confirmation,
                      ctx: CallContext) -> ProviderUpdate:
        raise Unsupported("paykassma M-Pesa has no confirmation step: the customer approves "
                          "on the phone")

    async def fetch_status(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        raise Unsupported("paykassma's M-Pesa document gives no status endpoint: payments "
                          "settle by postback or expire")

    async def refund(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        raise Unsupported("paykassma M-Pesa offers no refunds")

    async def cancel(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        raise Unsupported("paykassma M-Pesa offers no cancellation")

    def verify_callback(self, callback: InboundCallback) -> None:
        callbacks.verify(callbacks.read_postback(callback.body), self.settings)

    def parse_callback(self, callback: InboundCallback) -> list[CallbackEvent]:
        return callbacks.events(callbacks.read_postback(callback.body))

    def callback_answer(self, outcome: CallbackOutcome) -> CallbackAnswer:
        """Paykassma re-sends until HTTP 200 with body exactly {"status":"ok"}. We give it for
        everything we hold durably (applied, duplicate, ignored, deferred, mismatch: a
        mismatch is flagged for review and a re-send would carry the same numbers).
        A postback about a payment we do not know gets a non-ok answer by default ("retry"):
        the likely cause is a postback that outran our own commit, and Paykassma's re-send
        is then what delivers it; "ok" stops re-sends of postbacks for payments made outside
        Malipo (they stay in the journal either way). Forged: 401; unreadable: 400."""
        if outcome is CallbackOutcome.REJECTED:
            return _json_answer(401, {"status": "fail", "message": "signature rejected"})
        if outcome is CallbackOutcome.INVALID:
            return _json_answer(400, {"status": "fail", "message": "unreadable postback"})
        if (outcome is CallbackOutcome.UNKNOWN_PAYMENT
                and self.settings.unknown_postback_answer == "retry"):
            return _json_answer(404, {"status": "fail", "message": "unknown transaction"})
        return CallbackAnswer(200, OK_BODY, "application/json")

    async def close(self) -> None:
        await self._client.close()


def _settled(update: ProviderUpdate, operation: str) -> ProviderUpdate:
    """An answer whose status we cannot read may hide an accepted request: outcome unknown."""
    if update.status is Status.UNKNOWN:
        raise ProviderOutcomeUnknown(f"paykassma {operation}: answer status "
                                     f"{update.provider_status!r} is not one the document names")
    return update
