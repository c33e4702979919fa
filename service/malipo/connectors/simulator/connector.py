"""The simulator connector: the Connector protocol over the simulated provider (client.py),
its signature (signing.py) and its callback document (callbacks.py)."""

from __future__ import annotations

import time
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
    default_callback_answer,
)
from malipo.connectors.simulator.callbacks import read_callback
from malipo.connectors.simulator.client import SimulatedProvider
from malipo.connectors.simulator.mapping import RefundScenario, Scenario
from malipo.connectors.simulator.settings import SimulatorSettings
from malipo.connectors.simulator.signing import SIGNATURE_HEADER, verify
from malipo.domain.errors import FieldViolation, InvalidRequest
from malipo.domain.payments import Payment, ProviderUpdate
from malipo.domain.refunds import Refund

_CATALOGUE = load_catalogue(Path(__file__).with_name("catalogue.toml"))


class SimulatorConnector:
    provider = "simulator"
    capabilities = Capabilities(
        collections=True, payouts=True, refunds=True, partial_refunds=True, cancellations=True,
        status_polling=True, callbacks=True, status_by_our_reference=True,
        idempotent_submit=True, idempotent_refunds=True,
    )

    def __init__(self, account: ProviderAccount) -> None:
        self.account = account
        self.settings = SimulatorSettings.from_account(account)
        # Public: tests and the sandbox count calls and forge callbacks through it.
        self.client = SimulatedProvider(self.settings, account.callback_url)

    def catalogue(self) -> ProviderCatalogue:
        return _CATALOGUE

    def validate(self, payment: Payment) -> None:
        named = payment.provider_fields.get("scenario", "")
        if named and named not in Scenario.__members__.values():
            raise InvalidRequest(FieldViolation("provider_fields.scenario",
                                                "one of " + ", ".join(Scenario)))
        refund = payment.provider_fields.get("refund_scenario", "")
        if refund and refund not in RefundScenario.__members__.values():
            raise InvalidRequest(FieldViolation("provider_fields.refund_scenario",
                                                "one of " + ", ".join(RefundScenario)))

    def calls_for(self, payment_id: str, operation: str = "create") -> int:
        return self.client.calls[(operation, payment_id)]

    async def create_payment(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        return await self.client.create(payment, ctx)

    async def create_payout(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        return await self.client.create(payment, ctx)

    async def confirm(self, payment: Payment, confirmation: Confirmation,
                      ctx: CallContext) -> ProviderUpdate:
        return await self.client.confirm(payment, confirmation.otp)

    async def fetch_status(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        return await self.client.status(payment)

    async def refund(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        return await self.client.refund(payment)

    async def refund_part(self, payment: Payment, refund: Refund,
                          ctx: CallContext) -> ProviderUpdate:
        return await self.client.refund_part(payment, refund)

    async def fetch_refund_status(self, payment: Payment, refund: Refund,
                                  ctx: CallContext) -> ProviderUpdate:
        return await self.client.refund_status(payment, refund)

    async def cancel(self, payment: Payment, ctx: CallContext) -> ProviderUpdate:
        return await self.client.cancel(payment)

    def verify_callback(self, callback: InboundCallback) -> None:
        verify((self.settings.callback_secret, *self.settings.previous_callback_secrets),
               callback.body, callback.headers.get(SIGNATURE_HEADER, ""), time.time())

    def parse_callback(self, callback: InboundCallback) -> list[CallbackEvent]:
        return read_callback(callback.body)

    def callback_answer(self, outcome: CallbackOutcome) -> CallbackAnswer:
        return default_callback_answer(outcome)

    async def close(self) -> None:
        await self.client.close()
