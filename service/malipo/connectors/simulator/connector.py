"""A provider that lives in this process. Outcomes follow scenarios.py and time since
creation, so a restarted server still answers polls the same way. Callbacks are signed
(HMAC-SHA256 over "<timestamp>.<raw body>", header x-simulator-signature: t=...,v1=...) and
sent to the account's callback_url, so the callback machinery is exercised for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

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
from malipo.connectors.simulator.scenarios import Scenario, scenario_of
from malipo.domain.errors import (
    CallbackRejected,
    FieldViolation,
    InvalidRequest,
    ProviderNotFound,
    ProviderOutcomeUnknown,
    ProviderRejectedRequest,
    ProviderUnavailable,
)
from malipo.domain.money import Money
from malipo.domain.payments import NextAction, NextActionKind, Payment, ProviderUpdate
from malipo.domain.refunds import Refund
from malipo.domain.status import Status

OTP_CODE = "123456"
SIGNATURE_HEADER = "x-simulator-signature"
TOLERANCE_S = 300
KEEP = 100_000  # payments (and call counts) the simulator remembers
_CATALOGUE = load_catalogue(Path(__file__).with_name("catalogue.toml"))


@dataclass
class _Record:
    payment: Payment
    confirmed: bool = False
    refunded: bool = False
    refunded_minor: int = 0
    cancelled: bool = False


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class SimulatorConnector:
    provider = "simulator"
    capabilities = Capabilities(
        collections=True, payouts=True, refunds=True, partial_refunds=True, cancellations=True,
        status_polling=True, callbacks=True, status_by_our_reference=True,
        idempotent_submit=True,
    )

    def __init__(self, account: ProviderAccount) -> None:
        self.account = account
        self.settle_after_s = float(account.settings.get("settle_after_s", "1.0"))
        self.secret = account.settings.get("callback_secret", "simulator-secret")
        # The newest KEEP payments and call counts: a sandbox left running under load must
        # not grow without end. A payment forgotten here is answered from its scenario
        # alone, as after a restart (fetch_status).
        self.records: dict[str, _Record] = {}
        self.calls: Counter[tuple[str, str]] = Counter()  # (operation, payment id) -> count
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def catalogue(self) -> ProviderCatalogue:
        return _CATALOGUE

    def validate(self, payment: Payment) -> None:
        named = payment.provider_fields.get("scenario", "")
        if named and named not in Scenario.__members__.values():
            raise InvalidRequest(FieldViolation("provider_fields.scenario",
                                                "one of " + ", ".join(Scenario)))

    def calls_for(self, payment_id: str, operation: str = "create") -> int:
        return self.calls[(operation, payment_id)]

    def _called(self, operation: str, payment: Payment) -> None:
        self.calls[(operation, payment.id)] += 1
        if len(self.calls) > KEEP:
            del self.calls[next(iter(self.calls))]  # the oldest (insertion order)

    def _record(self, payment: Payment) -> _Record:
        record = self.records.get(payment.id)
        if record is None:
            record = self.records[payment.id] = _Record(payment)
            if len(self.records) > KEEP:
                del self.records[next(iter(self.records))]
        return record

    async def create_payment(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        return await self._create(payment, ctx)

    async def create_payout(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        return await self._create(payment, ctx)

    async def _create(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        scenario = scenario_of(payment)
        if scenario is Scenario.UNAVAILABLE:
            raise ProviderUnavailable("simulator: provider unavailable (scenario)")
        self._called("create", payment)
        record = self._record(payment)
        if scenario is Scenario.TIMEOUT:
            await asyncio.sleep(min(0.05, ctx.timeout(0.05)))
            raise ProviderOutcomeUnknown("simulator: timed out after sending (scenario)")
        update = self._state(record)
        if update.status in (Status.PROCESSING, Status.ACTION_REQUIRED) and scenario in (
            Scenario.SUCCEED, Scenario.FAIL_LATER, Scenario.REDIRECT, Scenario.BANK_TRANSFER
        ):
            self._schedule_callback(payment)
        return update

    def _state(self, record: _Record) -> ProviderUpdate:
        p = record.payment
        scenario = scenario_of(p)
        ref = "SIM-" + p.id.split("_", 1)[1]
        settled = (datetime.now(UTC) - p.created_at).total_seconds() >= self.settle_after_s
        if record.refunded:
            return ProviderUpdate(Status.REVERSED, ref, "refunded", failure_reason="REFUNDED")
        if record.cancelled:
            return ProviderUpdate(Status.CANCELLED, ref, "cancelled", failure_reason="CANCELLED")
        if scenario is Scenario.DECLINE:
            return ProviderUpdate(Status.FAILED, ref, "declined", "Insufficient funds",
                                  failure_reason="INSUFFICIENT_FUNDS",
                                  failure_message="Insufficient funds")
        if scenario is Scenario.OTP and not record.confirmed:
            return ProviderUpdate(Status.ACTION_REQUIRED, ref, "otp_sent",
                                  next_action=NextAction(NextActionKind.OTP, {
                                      "prompt": f"Enter the code sent by SMS ({OTP_CODE})"}))
        if scenario is Scenario.REDIRECT and not settled:
            return ProviderUpdate(Status.ACTION_REQUIRED, ref, "redirect", next_action=NextAction(
                NextActionKind.REDIRECT, {"url": f"https://simulator.invalid/pay/{p.id}"}))
        if scenario is Scenario.BANK_TRANSFER and not settled:
            return ProviderUpdate(Status.ACTION_REQUIRED, ref, "awaiting_transfer",
                                  next_action=NextAction(NextActionKind.BANK_TRANSFER, {
                                      "account_number": "0123456789", "bank_name": "Sim Bank",
                                      "account_name": "Malipo Simulator",
                                      "amount_minor": str(p.amount.minor), "reference": ref}))
        if scenario is Scenario.STAY_PROCESSING or not settled:
            return ProviderUpdate(Status.PROCESSING, ref, "in_progress")
        if scenario is Scenario.FAIL_LATER:
            return ProviderUpdate(Status.FAILED, ref, "failed", "Declined by the customer",
                                  failure_reason="DECLINED_BY_CUSTOMER",
                                  failure_message="Declined by the customer")
        return ProviderUpdate(Status.SUCCEEDED, ref, "success")

    async def confirm(self, payment: Payment, confirmation: Confirmation,
                      ctx: CallContext) -> ProviderUpdate:
        self._called("confirm", payment)
        record = self._record(payment)
        if confirmation.otp != OTP_CODE:
            raise InvalidRequest(FieldViolation("otp", "wrong code"), reason="WRONG_OTP")
        record.confirmed = True
        return ProviderUpdate(Status.SUCCEEDED, provider_status="success")

    async def fetch_status(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        self._called("status", payment)
        if payment.id not in self.records and payment.status is Status.PENDING:
            # Every create reaches `records` first, so this one never arrived (a PENDING
            # payment is minutes old at most: far newer than the KEEP-th).
            raise ProviderNotFound("simulator: no such payment")
        # A restarted simulator (or one that forgot it) answers from the scenario alone.
        return self._state(self._record(payment))

    async def refund(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        self._called("refund", payment)
        record = self._record(payment)
        record.refunded, record.refunded_minor = True, payment.amount.minor
        return ProviderUpdate(Status.REVERSED, provider_status="refunded",
                              failure_reason="REFUNDED")

    async def refund_part(self, payment: Payment, refund: Refund,
                          ctx: CallContext) -> ProviderUpdate:
        """Like a real provider, it refuses what it never collected or already returned."""
        self._called("refund", payment)
        record = self._record(payment)
        left = payment.amount.minor - record.refunded_minor
        if self._state(record).status is not Status.SUCCEEDED or not (
                refund.amount.currency == payment.amount.currency
                and 0 < refund.amount.minor <= left):
            raise ProviderRejectedRequest(f"simulator: cannot refund {refund.amount} "
                                          f"({left} minor units left)", reason="REFUND_REFUSED")
        record.refunded_minor += refund.amount.minor
        record.refunded = record.refunded_minor == payment.amount.minor
        reference = "SIMRF-" + refund.id.split("_", 1)[1]
        return ProviderUpdate(Status.SUCCEEDED, reference, "refunded", raw={
            "refund_reference": reference, "amount_minor": refund.amount.minor,
            "currency": refund.amount.currency.code, "status": "refunded"})

    async def cancel(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        self._called("cancel", payment)
        self._record(payment).cancelled = True
        return ProviderUpdate(Status.CANCELLED, provider_status="cancelled",
                              failure_reason="CANCELLED")

    # --- callbacks ---------------------------------------------------------------------

    def _schedule_callback(self, payment: Payment) -> None:
        if not self.account.callback_url:
            return
        task = asyncio.get_running_loop().create_task(self._callback_later(payment))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _callback_later(self, payment: Payment) -> None:
        await asyncio.sleep(self.settle_after_s + 0.05)
        update = self._state(self._record(payment))
        body = callback_body(payment, update)
        await self.post_callback(body)

    async def post_callback(self, body: bytes, signature: str | None = None) -> int:
        """Deliver one callback to our own listener (also used by tests to forge)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        header = signature or sign(self.secret, body, int(time.time()))
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with self._session.post(
                self.account.callback_url, data=body,
                headers={"Content-Type": "application/json", SIGNATURE_HEADER: header},
                timeout=aiohttp.ClientTimeout(total=10),
            ) as resp:
                return resp.status
        return 0

    def verify_callback(self, callback: InboundCallback) -> None:
        header = callback.headers.get(SIGNATURE_HEADER, "")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            timestamp = int(parts.get("t", ""))
        except ValueError:
            raise CallbackRejected("missing or malformed signature") from None
        if abs(time.time() - timestamp) > TOLERANCE_S:
            raise CallbackRejected("signature timestamp outside tolerance")
        secrets = [self.secret, *self.account.settings.get("previous_callback_secrets",
                                                           "").split(",")]
        for secret in filter(None, secrets):
            expected = sign(secret, callback.body, timestamp).split("v1=", 1)[1]
            if hmac.compare_digest(expected, parts.get("v1", "")):
                return
        raise CallbackRejected("signature mismatch")

    def parse_callback(self, callback: InboundCallback) -> list[CallbackEvent]:
        try:
            data = json.loads(callback.body)
            update = ProviderUpdate(
                status=Status(data["status"]),
                provider_reference=str(data.get("reference", "")),
                provider_status=str(data.get("provider_status", data["status"].lower())),
                failure_reason=str(data.get("failure_reason", "")),
                failure_message=str(data.get("failure_message", "")),
                amount=Money.of(int(data["amount_minor"]), str(data["currency"])),
                raw=data,
            )
            return [CallbackEvent(update=update, payment_id=str(data["payment_id"]),
                                  event_key=str(data["event_id"]), raw=data)]
        except (ValueError, KeyError, TypeError) as exc:
            raise CallbackRejected(f"not a simulator callback: {type(exc).__name__}") from None

    def callback_answer(self, outcome: CallbackOutcome) -> CallbackAnswer:
        return default_callback_answer(outcome)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()


def callback_body(payment: Payment, update: ProviderUpdate, *, amount_minor: int | None = None,
                  event_id: str | None = None) -> bytes:
    status = update.status or Status.PROCESSING
    return json.dumps({
        "event_id": event_id or f"{payment.id}:{status.value}",
        "payment_id": payment.id,
        "reference": update.provider_reference,
        "status": status.value,
        "provider_status": update.provider_status,
        "failure_reason": update.failure_reason,
        "failure_message": update.failure_message,
        "amount_minor": payment.amount.minor if amount_minor is None else amount_minor,
        "currency": payment.amount.currency.code,
    }, separators=(",", ":")).encode()
