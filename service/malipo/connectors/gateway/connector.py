"""The white-label Payment API Gateway (gateway-c2b-b2c-api.txt, NOTES.md section 1).

One connector serves every brand: an account's settings (settings.py lists them, defaults too)
name the brand's base URL, public_id, merchant_id and secret key. Channels are the gateway's
provider ids, kept as data in catalogue.toml with each country's phone format, limits and
required fields; the service checks them before calling validate() and then us.

How our Payment feeds the gateway's `extra` object (mapping.EXTRA_FIELDS): customer.name ->
customer_name, customer.email -> customer_email, customer.bank_account.bic -> bic,
customer.bank_account.bank_code -> bank_code, customer.document_type/document_number ->
customer_doc_type/customer_doc_number (values passed verbatim: intl_passport, driving_license,
national_id), provider_fields.return_url -> return_url, provider_fields.otp -> otp. A field is
sent when the channel requires it for the payment's direction, or when the caller put it in
provider_fields. customer_id is the phone in the channel's format, or the field the channel
names (bank account number for bank transfers, customer.reference for Nigerian C2B).

Flows: payment_c2b / payment_b2c -> the status table decides (mapping.STATUS): PROCESSING,
FAILED (with a non-zero result.code: a decline, its message kept), UNKNOWN or
ACTION_REQUIRED: a non-zero confirm_type asks for an OTP (confirm() sends it), `extra` bank
details (Nigerian bank transfer) become BANK_TRANSFER, extra.customer_redirect in a status
answer becomes REDIRECT. Provider id 14 (simulator) stays in progress and never calls back;
nothing special is coded for it, the reconciler polls and expires it.

Where the document is silent (each choice is data or a setting):
- URL paths: settings c2b_path, b2c_path, status_path.
- Confirmation Types: the section is missing. Any non-zero confirm_type is an OTP: C2B sends
  it in a status request with customer_id and extra.otp (the document's C2B example; a
  repeated payment_c2b would get the identical first answer), B2C in a second payment_b2c
  with the same order_id and extra.otp (the document's payment_b2c text).
- Status for an unknown order: HTTP 404 -> ProviderNotFound.
- HTTP 4xx: a refusal only when the body carries no status or says failed/cancelled; -1
  ("undefined, for example in an error situation") or any other status leaves the outcome
  UNKNOWN (client.py), never FAILED: the reconciler asks again.
- Callbacks carry no currency (callbacks.py says how the amount is read).
- Responses are not signed in the document, so only callbacks are verified.
- Refunds and cancellations are not in the document: Unsupported.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from malipo.app.catalogue import Channel, ProviderCatalogue, load_catalogue
from malipo.app.connector import (
    CallbackAnswer,
    CallbackEvent,
    CallbackOutcome,
    CallContext,
    Capabilities,
    Confirmation,
    InboundCallback,
    ProviderAccount,
    default_callback_answer,
)
from malipo.connectors.gateway import callbacks, mapping
from malipo.connectors.gateway.client import GatewayClient
from malipo.connectors.gateway.settings import GatewaySettings
from malipo.domain.errors import (
    FieldViolation,
    InvalidRequest,
    ProviderError,
    Unsupported,
)
from malipo.domain.payments import NextActionKind, Payment, ProviderUpdate
from malipo.domain.status import Direction, Status

CATALOGUE = load_catalogue(Path(__file__).with_name("catalogue.toml"))


class GatewayConnector:
    provider = "gateway"
    capabilities = Capabilities(
        collections=True, payouts=True, refunds=False, cancellations=False,
        status_polling=True, callbacks=True,
        status_by_our_reference=True,   # status takes our order_id
        idempotent_submit=True,         # a repeated order_id gets the identical answer
    )

    def __init__(self, account: ProviderAccount) -> None:
        self.account = account
        self.settings = GatewaySettings.from_account(account)
        self._client = GatewayClient(self.settings)

    def catalogue(self) -> ProviderCatalogue:
        return CATALOGUE

    def _channel(self, payment: Payment) -> Channel:
        catalogue = self.catalogue()
        channel = catalogue.channel(payment.channel or catalogue.default_channel)
        if channel is None:
            raise InvalidRequest(FieldViolation("channel", "rule channel: unknown gateway "
                                                f"provider id {payment.channel!r}"))
        return channel

    def validate(self, payment: Payment) -> None:
        """What check_payment cannot say: order_id syntax, a renderable customer_id and
        amount (two decimals, whatever the currency's exponent)."""
        violations: list[FieldViolation] = []
        if not mapping.ORDER_ID.fullmatch(payment.id):
            violations.append(FieldViolation("id", "rule order_id: at most 128 of "
                                             "[A-Za-z0-9_-:.]"))
        try:
            mapping.render_amount(payment.amount)
        except InvalidRequest as exc:
            violations.extend(exc.violations)
        try:
            mapping.customer_id(payment, self._channel(payment))
        except InvalidRequest as exc:
            violations.extend(exc.violations)
        if violations:
            raise InvalidRequest(violations)

    def _request(self, payment: Payment, otp: str = "") -> dict[str, object]:
        return mapping.payment_request(
            payment, self._channel(payment), merchant_id=self.settings.merchant_id,
            callback_url=self.account.callback_url, send_country=self.settings.send_country,
            otp=otp)

    async def _submit(self, payment: Payment, ctx: CallContext, otp: str = "") -> ProviderUpdate:
        payload = self._request(payment, otp)
        if payment.direction is Direction.COLLECTION:
            body = await self._client.payment_c2b(payload, ctx)
        else:
            body = await self._client.payment_b2c(payload, ctx)
        return mapping.read_reply(body, payment, submit=True)

    async def create_payment(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        if payment.direction is not Direction.COLLECTION:
            raise InvalidRequest(FieldViolation("direction", "rule direction: a collection"))
        update = await self._submit(payment, ctx)
        if (update.status is Status.PROCESSING and self.settings.redirect_lookup
                and self._channel(payment).extra.get("redirect_c2b")):
            update = await self._redirect(payment, update, ctx)
        return update

    async def _redirect(self, payment: Payment, submitted: ProviderUpdate,
                        ctx: CallContext) -> ProviderUpdate:
        """The redirect URL comes only from status; a failed read must not hide the submit's
        outcome, so it falls back to the submit's own answer (the reconciler asks later)."""
        try:
            polled = await self.fetch_status(payment, ctx)
        except ProviderError:
            return submitted
        action = polled.next_action
        if action is None or action.kind is not NextActionKind.REDIRECT:
            return submitted
        return replace(polled, provider_reference=polled.provider_reference
                       or submitted.provider_reference)

    async def create_payout(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        if payment.direction is not Direction.PAYOUT:
            raise InvalidRequest(FieldViolation("direction", "rule direction: a payout"))
        return await self._submit(payment, ctx)

    async def confirm(self, payment: Payment, confirmation: Confirmation,
                      ctx: CallContext) -> ProviderUpdate:
        otp = confirmation.otp.strip()
        if not otp:
            raise InvalidRequest(FieldViolation("otp", "rule required_field: the gateway "
                                                "confirms with extra.otp"))
        if payment.direction is Direction.PAYOUT:
            # "send the second payment_b2c request with confirmation data" (payment_b2c).
            return await self._submit(payment, ctx, otp)
        # A repeated payment_c2b is answered identically (order_id is the idempotency key),
        # so C2B confirms as the document's "Example of a status request" does.
        payload = {
            **mapping.status_request(self.settings.merchant_id, payment.id),
            "customer_id": mapping.customer_id(payment, self._channel(payment)),
            "extra": {"otp": otp},
        }
        body = await self._client.status(payload, ctx, mutating=True)
        return mapping.read_reply(body, payment, submit=True)

    async def fetch_status(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        payload = mapping.status_request(self.settings.merchant_id, payment.id)
        body = await self._client.status(payload, ctx)
        return mapping.read_reply(body, payment, submit=False)

    async def refund(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        raise Unsupported("the gateway's document has no refund operation")

    async def cancel(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        raise Unsupported("the gateway's document has no cancel operation")

    def verify_callback(self, callback: InboundCallback) -> None:
        """The signature is over the fields as received (order, PHP rendering), parsed from
        the raw bytes with exact decimals; both the current and the previous key count."""
        callbacks.verify_callback(callback.body, self.settings.secrets,
                                  self.settings.merchant_id)

    def parse_callback(self, callback: InboundCallback) -> list[CallbackEvent]:
        return callbacks.parse_callback(callback.body, CATALOGUE)

    def callback_answer(self, outcome: CallbackOutcome) -> CallbackAnswer:
        # "Payment gateway considers the Merchant system response as successful if HTTP 200."
        return default_callback_answer(outcome)

    async def close(self) -> None:
        await self._client.close()
