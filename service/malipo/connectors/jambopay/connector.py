"""JamboPay utility payments (Kenya, KES): KPLC prepaid tokens and airtime, bought from the
merchant's JamboPay agent float. Each purchase is a PAYOUT in two steps:

1. presentment `POST .../api/payments/POST` -> TransactionID and the meter owner's names; the
   payout waits in ACTION_REQUIRED with a CONFIRM next_action (name, amount), unless
   provider_fields["auto_commit"] == "true", in which case step 2 follows at once;
2. commit `PUT .../api/payments/PUT` (ConfirmPayment) -> receipt, and for KPLC the token and
   units, returned in ProviderUpdate.fulfilment: an undelivered token is money lost.

Status: `GET .../api/payments/gettransactionstatus?transactionid=` (mapping.STATUS).
Callbacks are unsigned claims confirmed by a status call (callbacks.py).

Where jambopay-transaction-status.txt and NOTES.md section 4 are silent, this connector
assumes, and each assumption is a setting (settings.py) where it can be:
- Auth: form-encoded `grant_type`/`username`/`password` to `token_url` (default
  `{base_url}/token`, grant_type "agency"), JSON `access_token` and `expires_in`; the app key
  travels in the `app_key` header (`app_key_header`). Request bodies are form-encoded.
- Streams: KPLC is "kplc" (NOTES.md), airtime is "credit" (assumed; NOTES.md says only
  "another stream"): `kplc_stream`, `airtime_stream`. OperatorCode (1 Airtel, 2 Telkom,
  4 Safaricom) is channel data in catalogue.toml.
- Presentment fields are NOTES.md's (Stream, PhoneNumber, Amount, MeterNumber, optional
  CallbackUrl; airtime sends OperatorCode instead of MeterNumber, assumed); the commit sends
  Stream and TransactionID only. The error codes in mapping.ERRORS are assumed.
- A presentment's lifetime is not documented: `presentment_ttl_s` (0: no expires_at shown).
- JamboPay takes no reference of ours, so polls go by its TransactionID only, and a lost
  auto-committed create cannot be found again (status_by_our_reference, idempotent_submit
  are False). A presentment alone moves no money, so its lost answer is retryable.
- A commit refused with a state-dependent code (1051 invalid/expired, 1053 already
  completed) is settled by asking the status endpoint, so confirm and later polls agree.
- Callbacks: optional source check `callback_allowed_ips` (comma-separated, CIDR allowed);
  the answer JamboPay expects is undocumented: 200 "OK".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from malipo.app.catalogue import Channel, ProviderCatalogue, load_catalogue, national_number
from malipo.app.catalogue import render_phone as render
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
from malipo.connectors.exact_json import plain
from malipo.connectors.jambopay import callbacks, signing
from malipo.connectors.jambopay.client import ApiReply, JambopayClient
from malipo.connectors.jambopay.mapping import (
    ErrorKind,
    commit_form,
    confirm_action,
    presentment_form,
    read_commit,
    read_fault,
    read_presentment,
    read_status,
)
from malipo.connectors.jambopay.settings import JambopaySettings
from malipo.domain.errors import (
    FieldViolation,
    InvalidRequest,
    ProviderNotFound,
    ProviderOutcomeUnknown,
    ProviderRejectedRequest,
    ProviderUnavailable,
    Unsupported,
)
from malipo.domain.payments import Payment, ProviderUpdate
from malipo.domain.status import Direction, Method, Status

CATALOGUE = load_catalogue(Path(__file__).with_name("catalogue.toml"))


class JambopayConnector:
    provider = "jambopay"
    capabilities = Capabilities(
        collections=False, payouts=True, refunds=False, cancellations=False,
        status_polling=True, callbacks=True, status_by_our_reference=False,
        idempotent_submit=False, callbacks_need_confirmation=True,
    )

    def __init__(self, account: ProviderAccount) -> None:
        self.account = account
        self.settings = JambopaySettings.from_account(account)
        self._client = JambopayClient(self.settings)
        self._allowed_sources = signing.allowed_networks(self.settings.callback_allowed_ips)

    def catalogue(self) -> ProviderCatalogue:
        return CATALOGUE

    def validate(self, payment: Payment) -> None:
        problems: list[FieldViolation] = []
        if payment.direction is not Direction.PAYOUT:
            problems.append(FieldViolation("direction", "JamboPay purchases are payouts"))
        channel = CATALOGUE.channel(payment.channel or CATALOGUE.default_channel)
        if channel is not None and payment.method not in (channel.method, Method.UNSPECIFIED):
            problems.append(FieldViolation(
                "method", f"channel {channel.id} takes {channel.method}, not {payment.method}"))
        meter = payment.provider_fields.get("meter_number", "")
        if meter and not meter.isdigit():
            problems.append(FieldViolation("provider_fields.meter_number", "digits only"))
        if payment.provider_fields.get("auto_commit", "") not in ("", "true", "false"):
            problems.append(FieldViolation("provider_fields.auto_commit", '"true" or "false"'))
        if problems:
            raise InvalidRequest(problems)

    async def create_payment(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        raise Unsupported("JamboPay purchases are payouts from the agent float, not collections")

    async def create_payout(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        channel = self._channel(payment)
        kplc = channel.method is Method.BILL_PAYMENT
        form = presentment_form(
            stream=self._stream(channel), phone=self._phone(payment, channel),
            amount=payment.amount, callback_url=self.account.callback_url,
            meter_number=payment.provider_fields.get("meter_number", "") if kplc else "",
            operator_code="" if kplc else str(channel.extra.get("operator_code", "")),
        )
        reply = await self._client.present(form, ctx)
        if not reply.ok:
            return self._presentment_refused(reply)
        presentment = read_presentment(reply.data, payment.amount.currency.code)
        if payment.provider_fields.get("auto_commit") == "true":
            try:
                update = await self._commit(payment, presentment.transaction_id, channel, ctx)
            except ProviderOutcomeUnknown as exc:
                # Keep the TransactionID: it is the only handle the reconciler can poll with.
                return ProviderUpdate(Status.UNKNOWN, provider_reference=presentment.transaction_id,
                                      failure_reason="PROVIDER_OUTCOME_UNKNOWN",
                                      failure_message=exc.message)
            return update if update.amount is not None else replace(
                update, amount=presentment.amount)
        expires_at = ""
        if self.settings.presentment_ttl_s > 0:
            expires_at = (datetime.now(UTC) + timedelta(seconds=self.settings.presentment_ttl_s)
                          ).isoformat(timespec="seconds")
        return ProviderUpdate(
            status=Status.ACTION_REQUIRED,
            provider_reference=presentment.transaction_id,
            provider_status="Checking",
            next_action=confirm_action(payment, presentment, expires_at),
            amount=presentment.amount,
            raw=plain(reply.data),
        )

    async def confirm(self, payment: Payment, confirmation: Confirmation,
                      ctx: CallContext) -> ProviderUpdate:
        given = confirmation.provider_transaction_id
        if given and payment.provider_reference and given != payment.provider_reference:
            raise InvalidRequest(FieldViolation(
                "provider_transaction_id", "does not match the presentment's TransactionID"))
        txid = payment.provider_reference or given
        if not txid:
            raise InvalidRequest(FieldViolation("provider_transaction_id",
                                                "no JamboPay TransactionID to commit"))
        return await self._commit(payment, txid, self._channel(payment), ctx)

    async def fetch_status(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        txid = payment.provider_reference
        if not txid:
            raise ProviderNotFound("no JamboPay TransactionID is known for this payout")
        reply = await self._client.transaction_status(txid, ctx)
        if reply.ok:
            if not isinstance(reply.data, Mapping):
                raise ProviderNotFound(f"JamboPay has no transaction {txid}")
            update = read_status(reply.data, payment)
            return update if update.provider_reference else replace(
                update, provider_reference=txid)
        fault = read_fault(reply.status, reply.data)
        if fault.kind is ErrorKind.STATE:
            raise ProviderNotFound(f"JamboPay has no transaction {txid}: {fault.message}")
        if fault.kind is ErrorKind.INTERNAL:
            raise ProviderUnavailable(f"jambopay.status: {fault.message}")
        raise ProviderRejectedRequest(f"jambopay.status refused: {fault.message}")

    async def refund(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        raise Unsupported("JamboPay offers no refund of a vended token or airtime")

    async def cancel(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        # No cancel endpoint: an uncommitted presentment simply expires (status Cancelled).
        raise Unsupported("JamboPay has no cancellation; an unconfirmed presentment expires")

    def verify_callback(self, callback: InboundCallback) -> None:
        callbacks.verify(callback, self._allowed_sources)

    def parse_callback(self, callback: InboundCallback) -> list[CallbackEvent]:
        return callbacks.parse(callback, CATALOGUE.currencies[0])

    def callback_answer(self, outcome: CallbackOutcome) -> CallbackAnswer:
        return default_callback_answer(outcome)

    async def close(self) -> None:
        await self._client.close()

    # --- helpers ----------------------------------------------------------------------

    def _channel(self, payment: Payment) -> Channel:
        channel = CATALOGUE.channel(payment.channel or CATALOGUE.default_channel)
        if channel is None:
            raise InvalidRequest(FieldViolation("channel", f"unknown channel {payment.channel!r}"))
        return channel

    def _stream(self, channel: Channel) -> str:
        if channel.method is Method.BILL_PAYMENT:
            return self.settings.kplc_stream
        return self.settings.airtime_stream

    @staticmethod
    def _phone(payment: Payment, channel: Channel) -> str:
        raw = payment.customer.phone_number
        national = national_number(raw, channel.phone) if channel.phone else None
        if channel.phone is None or national is None:
            return "".join(ch for ch in raw if ch.isdigit())
        return render(national, channel.phone)

    def _presentment_refused(self, reply: ApiReply) -> ProviderUpdate:
        fault = read_fault(reply.status, reply.data)
        if fault.kind is ErrorKind.AUTH:
            raise ProviderRejectedRequest(f"jambopay.presentment: {fault.message}")
        if fault.kind is ErrorKind.INTERNAL:
            raise ProviderUnavailable(f"jambopay.presentment: {fault.message}")
        return ProviderUpdate(
            Status.FAILED, provider_status=str(fault.code or reply.status),
            provider_message=fault.message, failure_reason=fault.reason,
            failure_message=fault.message, raw=plain(reply.data or {}))

    async def _commit(self, payment: Payment, txid: str, channel: Channel,
                      ctx: CallContext) -> ProviderUpdate:
        form = commit_form(stream=self._stream(channel), transaction_id=txid)
        reply = await self._client.commit(form, ctx)
        if reply.ok:
            if reply.data is None:
                raise ProviderOutcomeUnknown("jambopay.commit: 2xx answer without a JSON body")
            return read_commit(reply.data, payment, txid)
        fault = read_fault(reply.status, reply.data)
        if fault.kind is ErrorKind.AUTH:
            raise ProviderRejectedRequest(f"jambopay.commit: {fault.message}")
        if fault.kind is ErrorKind.INTERNAL:
            raise ProviderOutcomeUnknown(f"jambopay.commit: {fault.message}")
        if fault.kind is ErrorKind.STATE:
            try:
                update = await self.fetch_status(replace(payment, provider_reference=txid), ctx)
            except ProviderNotFound:
                pass
            else:
                return replace(update, provider_message=f"commit refused: {fault.message}")
        return ProviderUpdate(
            Status.FAILED, provider_reference=txid, provider_status=str(fault.code or ""),
            provider_message=fault.message, failure_reason=fault.reason,
            failure_message=fault.message, raw=plain(reply.data or {}))
