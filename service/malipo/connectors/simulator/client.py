"""The simulated provider itself, in this process: one method per provider operation, the
payments it remembers, and the signed callbacks it sends to the account's callback_url (so
the callback machinery is exercised for real). Outcomes follow mapping.py and time since
creation, so a restarted server still answers polls the same way."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

from malipo.app.connector import CallContext
from malipo.connectors.simulator.callbacks import callback_body
from malipo.connectors.simulator.mapping import (
    OTP_CODE,
    RefundScenario,
    Scenario,
    answer,
    refund_scenario_of,
    scenario_of,
)
from malipo.connectors.simulator.settings import SimulatorSettings
from malipo.connectors.simulator.signing import SIGNATURE_HEADER, sign
from malipo.domain.errors import (
    FieldViolation,
    InvalidRequest,
    ProviderNotFound,
    ProviderOutcomeUnknown,
    ProviderRejectedRequest,
    ProviderUnavailable,
)
from malipo.domain.payments import Payment, ProviderUpdate
from malipo.domain.refunds import Refund
from malipo.domain.status import Status

KEEP = 100_000  # payments (and call counts) the simulator remembers


@dataclass
class _Record:
    payment: Payment
    confirmed: bool = False
    refunded: bool = False
    refunded_minor: int = 0
    cancelled: bool = False


class SimulatedProvider:
    def __init__(self, settings: SimulatorSettings, callback_url: str) -> None:
        self.settings = settings
        self.callback_url = callback_url
        # The newest KEEP payments and call counts: a sandbox left running under load must
        # not grow without end. A payment forgotten here is answered from its scenario
        # alone, as after a restart (status).
        self.records: dict[str, _Record] = {}
        self.calls: Counter[tuple[str, str]] = Counter()  # (operation, payment id) -> count
        # Partial refunds made, by our refund id (the reference): a resend answers the same.
        self.refunds: dict[str, ProviderUpdate] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

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

    def _state(self, record: _Record) -> ProviderUpdate:
        p = record.payment
        settled = (datetime.now(UTC) - p.created_at).total_seconds() >= \
            self.settings.settle_after_s
        return answer(p, settled=settled, confirmed=record.confirmed,
                      refunded=record.refunded, cancelled=record.cancelled)

    async def create(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
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

    async def confirm(self, payment: Payment, otp: str) -> ProviderUpdate:
        self._called("confirm", payment)
        record = self._record(payment)
        if otp != OTP_CODE:
            raise InvalidRequest(FieldViolation("otp", "wrong code"), reason="WRONG_OTP")
        record.confirmed = True
        return ProviderUpdate(Status.SUCCEEDED, provider_status="success")

    async def status(self, payment: Payment) -> ProviderUpdate:
        self._called("status", payment)
        if payment.id not in self.records and payment.status is Status.PENDING:
            # Every create reaches `records` first, so this one never arrived (a PENDING
            # payment is minutes old at most: far newer than the KEEP-th).
            raise ProviderNotFound("simulator: no such payment")
        # A restarted simulator (or one that forgot it) answers from the scenario alone.
        return self._state(self._record(payment))

    async def refund(self, payment: Payment) -> ProviderUpdate:
        self._called("refund", payment)
        record = self._record(payment)
        again = record.refunded  # a whole refund sent twice reverts the payment once
        record.refunded, record.refunded_minor = True, payment.amount.minor
        self._lose_first_answer(payment, again)
        return ProviderUpdate(Status.REVERSED, provider_status="refunded",
                              failure_reason="REFUNDED")

    async def refund_part(self, payment: Payment, refund: Refund) -> ProviderUpdate:
        """Like a real provider, it refuses what it never collected or already returned;
        our refund id is the reference, so the same refund sent again is made once."""
        self._called("refund", payment)
        made = self.refunds.get(refund.id)
        if made is not None:
            return made
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
        made = self.refunds[refund.id] = ProviderUpdate(
            Status.SUCCEEDED, reference, "refunded", raw={
                "refund_reference": reference, "amount_minor": refund.amount.minor,
                "currency": refund.amount.currency.code, "status": "refunded"})
        if len(self.refunds) > KEEP:
            del self.refunds[next(iter(self.refunds))]
        self._lose_first_answer(payment, again=False)
        return made

    async def refund_status(self, payment: Payment, refund: Refund) -> ProviderUpdate:
        """Where one refund stands, speaking of the refund."""
        self._called("refund_status", payment)
        made = self.refunds.get(refund.id)
        if made is not None:
            return made
        record = self.records.get(payment.id)
        if refund.amount == payment.amount and record is not None and record.refunded:
            return ProviderUpdate(Status.SUCCEEDED, provider_status="refunded")
        raise ProviderNotFound("simulator: no such refund")

    def _lose_first_answer(self, payment: Payment, again: bool) -> None:
        if refund_scenario_of(payment) is RefundScenario.TIMEOUT and not again:
            raise ProviderOutcomeUnknown("simulator: refund timed out after sending (scenario)")

    async def cancel(self, payment: Payment) -> ProviderUpdate:
        self._called("cancel", payment)
        self._record(payment).cancelled = True
        return ProviderUpdate(Status.CANCELLED, provider_status="cancelled",
                              failure_reason="CANCELLED")

    def _schedule_callback(self, payment: Payment) -> None:
        if not self.callback_url:
            return
        task = asyncio.get_running_loop().create_task(self._callback_later(payment))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _callback_later(self, payment: Payment) -> None:
        await asyncio.sleep(self.settings.settle_after_s + 0.05)
        update = self._state(self._record(payment))
        await self.post_callback(callback_body(payment, update))

    async def post_callback(self, body: bytes, signature: str | None = None) -> int:
        """Deliver one callback to our own listener (also used by tests to forge)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        header = signature or sign(self.settings.callback_secret, body, int(time.time()))
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with self._session.post(
                self.callback_url, data=body,
                headers={"Content-Type": "application/json", SIGNATURE_HEADER: header},
                timeout=aiohttp.ClientTimeout(total=10),
            ) as resp:
                return resp.status
        return 0

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()
