"""Kwik debit orders (South Africa, ZAR): batched submission, transaction tracking, webhooks.

Documented (kwik-transactions.txt, NOTES.md section 5): Basic auth api_key:api_secret,
100 requests/second, POST /payments/submit with batch_reference and payments[], GET
/transactions (filters) and GET /transactions/record/{reference}, GMT+2 timestamps,
webhooks `{"transactions": [...]}` (NOTES.md: {id, type, status, results[], created_at}).

Where the documents are silent, the choices below are ours (settings.py lists each):
- payments[] items carry `transaction_reference` (our payment id), `payment_methods_id`,
  `amount` as a two-decimal string, `action_date` (provider_fields, YYYY-MM-DD),
  customer/customer_id and bank_account/bank_account_id.
- The submit answer is read as {"status": true, "payments"|"results": [...]}: one entry
  per payment, matched by transaction_reference (else by position), `status: false` +
  `message` for a refused one, `id` = Kwik's payment id, which is our provider_reference
  everywhere (transactions give it as `payments_id`). A payment missing from the answer,
  or an answer that cannot be read, is UNKNOWN.
- A transaction exists only once the collection run of its action date has made it, so
  a 404 on the record is not "never submitted": the submission is then looked up by our
  reference [payment_record_path], and only when that is missing too is it not found (a
  resumed submission is sent again only then). The payment cannot settle before the end
  of its action date (settles_not_before), so the expiry rule does not count before it.
- Status names come from GET /lookups/transaction_status (Kwik's public docs)
  [status_lookups_path, status_lookups to pin names, lookups_refresh_s]. A webhook read
  before the names are known leaves the status open and the callback processor confirms
  it with fetch_status, which fetches them.
- Webhooks are unsigned: a shared secret in the callback URL's query or a header
  [webhook_secret, webhook_secret_param, webhook_secret_header] and a source allow-list
  [webhook_allowed_ips]; without a secret every webhook must be confirmed by polling.
- Kwik's answer to our webhook is a plain 200.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
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
    default_callback_answer,
)
from malipo.connectors.http import ProviderHttp
from malipo.connectors.kwik.batcher import Batcher, Outcome
from malipo.connectors.kwik.callbacks import parse_webhook
from malipo.connectors.kwik.client import KwikClient
from malipo.connectors.kwik.lookups import StatusNames
from malipo.connectors.kwik.mapping import (
    MalformedRecord,
    TransactionFilter,
    TransactionUpdate,
    end_of_action_date,
    parse_action_date,
    payment_item,
    render_amount,
    require_object,
    submission_update,
    transaction_update,
)
from malipo.connectors.kwik.ratelimit import SlidingWindowLimiter
from malipo.connectors.kwik.settings import KwikSettings
from malipo.connectors.kwik.signing import secret_matches, source_allowed
from malipo.domain.errors import (
    CallbackRejected,
    FieldViolation,
    InvalidRequest,
    ProviderError,
    ProviderNotFound,
    ProviderOutcomeUnknown,
    ProviderRejectedRequest,
    Unsupported,
)
from malipo.domain.ids import new_ulid
from malipo.domain.payments import Payment, ProviderUpdate
from malipo.domain.status import Direction, Method, Status
from malipo.redaction import mask_text

CATALOGUE = load_catalogue(Path(__file__).with_name("catalogue.toml"))
_BRANCH = re.compile(r"^\d{6}$")
_ACCOUNT = re.compile(r"^\d{6,16}$")


class KwikConnector:
    provider = "kwik"

    def __init__(self, account: ProviderAccount) -> None:
        self.account = account
        self.settings = settings = KwikSettings.from_account(account)
        self.capabilities = Capabilities(
            collections=True, payouts=False, refunds=False, cancellations=False,
            status_polling=True, callbacks=True, status_by_our_reference=True,
            idempotent_submit=False, callbacks_need_confirmation=not settings.webhook_secret,
        )
        self._http = ProviderHttp(provider="kwik", timeout_s=settings.timeout_s)
        self.limiter = SlidingWindowLimiter(settings.rate_limit_per_s,
                                            settings.rate_limit_window_s)
        self._client = KwikClient(settings, http=self._http, limiter=self.limiter)
        self.status_names = StatusNames(self._client, pinned=dict(settings.status_lookups),
                                        refresh_s=settings.lookups_refresh_s)
        self.batcher = Batcher(self._send_batch, window_s=settings.batch_window_s,
                               max_size=settings.batch_max_size,
                               default_timeout_s=settings.timeout_s)

    def catalogue(self) -> ProviderCatalogue:
        return CATALOGUE

    def validate(self, payment: Payment) -> None:
        """Rules the catalogue cannot say: either/or identities, date and account formats."""
        out: list[FieldViolation] = []
        fields = payment.provider_fields
        bank = payment.customer.bank_account
        if payment.direction is not Direction.COLLECTION or payment.method is not (
            Method.DEBIT_ORDER
        ):
            out.append(FieldViolation("method", "rule kwik: only DEBIT_ORDER collections"))
        try:
            parse_action_date(fields.get("action_date", ""))
        except ValueError:
            out.append(FieldViolation("provider_fields.action_date",
                                      "rule date_format: YYYY-MM-DD"))
        if not (fields.get("payment_methods_id") or self.settings.payment_methods_id):
            out.append(FieldViolation("provider_fields.payment_methods_id",
                                      "rule required_field: no Kwik payment method configured"))
        if not fields.get("bank_account_id"):
            if not _ACCOUNT.match(bank.account_number):
                out.append(FieldViolation("customer.bank_account.account_number",
                                          "rule bank_account: 6-16 digits, or "
                                          "provider_fields.bank_account_id"))
            if not _BRANCH.match(bank.bank_code):
                out.append(FieldViolation("customer.bank_account.bank_code",
                                          "rule branch_code: 6 digits"))
            if not (bank.holder_name or payment.customer.name).strip():
                out.append(FieldViolation("customer.bank_account.holder_name",
                                          "rule required_field: account holder name"))
        if not fields.get("customer_id") and not payment.customer.name.strip():
            out.append(FieldViolation("customer.name",
                                      "rule required_field: or provider_fields.customer_id"))
        if payment.amount.minor <= 0:
            out.append(FieldViolation("amount.amount_minor", "rule min_amount: above zero"))
        try:
            render_amount(payment.amount)
        except InvalidRequest as exc:
            out.extend(exc.violations)
        if out:
            raise InvalidRequest(out)

    async def create_payment(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        item = payment_item(payment, self.settings.payment_methods_id)
        update = await self.batcher.submit(payment.id, item, ctx)
        if not self.status_names.loaded:
            # Warm the status names while we are talking to Kwik anyway, so webhooks
            # (parsed synchronously) can name statuses.
            with contextlib.suppress(ProviderError):
                await self.status_names.refresh(ctx)
        return update

    async def _send_batch(self, items: Sequence[Mapping[str, Any]],
                          ctx: CallContext) -> list[Outcome]:
        body = {"batch_reference": self.settings.batch_reference_prefix + new_ulid(),
                "payments": list(items)}
        answer = await self._client.submit_payments(body, ctx)
        results = answer.get("results", answer.get("payments"))
        if not isinstance(results, list):
            raise ProviderOutcomeUnknown("Kwik accepted the batch but listed no results")
        rows: list[Any] = list(results)  # type: ignore[arg-type]
        by_ref = {str(r.get("transaction_reference")): r for r in rows if isinstance(r, Mapping)}
        outcomes: list[Outcome] = []
        for index, item in enumerate(items):
            ref = str(item["transaction_reference"])
            row = by_ref.get(ref)
            if row is None and len(rows) == len(items) and isinstance(rows[index], Mapping):
                row = rows[index]
            outcomes.append(_item_outcome(ref, row))
        return outcomes

    async def fetch_status(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        try:
            body = await self._client.transaction_record(payment.id, ctx)
        except ProviderNotFound:
            # No collection run yet: is the submission there? (ProviderNotFound if not.)
            return await self._submission(payment, ctx)
        try:
            tx = require_object(body.get("transaction"), "transaction")
            name = await self.status_names.resolve(
                str(tx.get("transaction_status_lookups_id") or ""), ctx)
            return transaction_update(tx, name, unnamed=Status.UNKNOWN)
        except MalformedRecord as exc:
            raise ProviderRejectedRequest(f"Kwik transaction record unreadable: {exc}") from None

    async def _submission(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        body = await self._client.payment_record(payment.id, ctx)
        try:
            return submission_update(require_object(body.get("payment"), "payment"))
        except (MalformedRecord, KeyError) as exc:
            raise ProviderRejectedRequest(f"Kwik payment record unreadable: {exc}") from None

    def settles_not_before(self, payment: Payment) -> datetime | None:
        """A debit order is collected on its action date: no outcome can exist before."""
        return end_of_action_date(payment.provider_fields.get("action_date", ""))

    async def list_transactions(self, filters: TransactionFilter,
                                ctx: CallContext) -> list[TransactionUpdate]:
        """GET /transactions with the documented filters, for the reconciler's sweeps.
        Unreadable records are left out (a sweep must not stop on one bad row)."""
        body = await self._client.transactions(filters.params(), ctx)
        rows = body.get("transactions")
        out: list[TransactionUpdate] = []
        for row in rows if isinstance(rows, list) else []:  # type: ignore[misc]
            try:
                tx = require_object(row, "transaction")
                name = await self.status_names.resolve(
                    str(tx.get("transaction_status_lookups_id") or ""), ctx)
                out.append(TransactionUpdate(str(tx.get("transaction_reference")),
                                             transaction_update(tx, name,
                                                                unnamed=Status.UNKNOWN)))
            except MalformedRecord:
                continue
        return out

    async def create_payout(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        raise Unsupported("Kwik debit orders collect only; payouts are not offered here")

    async def confirm(self, payment: Payment, confirmation: Confirmation,
                      ctx: CallContext) -> ProviderUpdate:
        raise Unsupported("Kwik debit orders have no confirmation step")

    async def refund(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        raise Unsupported("Kwik refunds are not in the provider document")

    async def cancel(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        raise Unsupported("Kwik cancellation is not in the provider document")

    def verify_callback(self, callback: InboundCallback) -> None:
        s = self.settings
        if not source_allowed(callback.remote, s.webhook_allowed_ips):
            raise CallbackRejected("Kwik webhook from an address not on the allow-list")
        if s.webhook_secret and not secret_matches(
            s.webhook_secret, callback.query, callback.headers,
            query_param=s.webhook_secret_param, header=s.webhook_secret_header,
        ):
            raise CallbackRejected("Kwik webhook without the shared secret")

    def parse_callback(self, callback: InboundCallback) -> list[CallbackEvent]:
        return parse_webhook(callback.body, self.status_names.name)

    def callback_answer(self, outcome: CallbackOutcome) -> CallbackAnswer:
        return default_callback_answer(outcome)

    async def close(self) -> None:
        await self.batcher.close()
        await self._http.close()


def _item_outcome(reference: str, row: Mapping[str, Any] | None) -> Outcome:
    if row is None:
        return ProviderOutcomeUnknown(f"Kwik's batch answer does not mention {reference}")
    if row.get("status") is False:
        message = mask_text(str(row.get("message") or "refused"))[:300]
        return ProviderRejectedRequest(f"Kwik refused payment {reference}: {message}")
    try:
        return submission_update(row)
    except MalformedRecord as exc:
        return ProviderOutcomeUnknown(f"Kwik's answer for {reference} is unreadable: {exc}")
