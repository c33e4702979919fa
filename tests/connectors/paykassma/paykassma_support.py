"""Builders and a stand-in postback listener for the Paykassma connector tests.

The Receiver does for this connector what the callback listener will do, in the same order:
journal the raw delivery, verify, parse, look the payment up, de-duplicate by event key,
apply with the domain's apply_update, and answer with the connector's callback_answer.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from aiohttp import web

from malipo.app.connector import CallbackOutcome, InboundCallback, ProviderAccount
from malipo.connectors.paykassma import PaykassmaConnector
from malipo.domain.errors import CallbackRejected
from malipo.domain.money import Money
from malipo.domain.payments import ChangeKind, Customer, Payment, apply_update
from malipo.domain.status import Direction, Method, Status
from malipo.sandbox.paykassma import PaykassmaFake

SETTINGS = {
    "pluginapi_secret": "pluginapi-secret",
    "withdrawal_private_key": "withdrawal-private",
    "postback_access_key": "TA25Ea9sjPUFJvIG",
    "postback_private_key": "postback-private",
    "plugin_url": "https://plugin.paykassma.example",
    "is_test": "true",
}
_counter = iter(range(1, 1_000_000))


def account_for(fake: PaykassmaFake, callback_url: str = "", **overrides: str) -> ProviderAccount:
    return ProviderAccount("paykassma", "main", {**SETTINGS, "api_url": fake.base_url,
                                                 **overrides}, callback_url=callback_url)


def build_payment(minor: int = 300000, phone: str = "0712344321", *,
                  direction: Direction = Direction.COLLECTION,
                  method: Method = Method.MOBILE_MONEY, reference: str = "user-42",
                  channel: str = "", provider_fields: dict[str, str] | None = None,
                  description: str = "") -> Payment:
    now = datetime.now(UTC)
    return Payment(
        id=f"pay_{next(_counter):06d}", tenant="t1", direction=direction, provider="paykassma",
        account="main", method=method, amount=Money.of(minor, "KES"),
        idempotency_key=f"k{now.timestamp()}", created_at=now, updated_at=now,
        channel=channel, customer=Customer(phone_number=phone, reference=reference),
        provider_fields=provider_fields or {}, description=description,
    )


@dataclass
class Receiver:
    connector: PaykassmaConnector
    payments: dict[str, Payment] = field(default_factory=dict)
    journal: list[bytes] = field(default_factory=list)
    outcomes: list[CallbackOutcome] = field(default_factory=list)
    transitions: list[tuple[str, Status]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    url: str = ""

    def track(self, payment: Payment, **changes: object) -> None:
        self.payments[payment.id] = replace(payment, **changes)  # type: ignore[arg-type]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.journal.append(body)
        callback = InboundCallback(
            provider="paykassma", account="main",
            headers={k.lower(): v for k, v in request.headers.items()}, body=body,
            query=dict(request.query), remote=request.remote or "",
            received_at=datetime.now(UTC))
        outcome = self._outcome(callback)
        self.outcomes.append(outcome)
        answer = self.connector.callback_answer(outcome)
        return web.Response(status=answer.status, body=answer.body,
                            content_type=answer.content_type)

    def _outcome(self, callback: InboundCallback) -> CallbackOutcome:
        try:
            self.connector.verify_callback(callback)
        except CallbackRejected:
            return CallbackOutcome.REJECTED
        try:
            events = self.connector.parse_callback(callback)
        except CallbackRejected:
            return CallbackOutcome.INVALID
        outcome = CallbackOutcome.IGNORED
        for event in events:
            payment = self.payments.get(event.payment_id)
            if event.event_key in self.seen:
                outcome = CallbackOutcome.DUPLICATE
                continue
            if payment is None:
                return CallbackOutcome.UNKNOWN_PAYMENT
            if event.direction and event.direction != payment.direction.value:
                return CallbackOutcome.MISMATCH
            self.seen.add(event.event_key)
            change = apply_update(payment, event.update, datetime.now(UTC))
            self.payments[payment.id] = change.after
            if change.kind is ChangeKind.REVIEW:
                outcome = CallbackOutcome.MISMATCH
            elif change.kind is ChangeKind.TRANSITION:
                self.transitions.append((payment.id, change.after.status))
                outcome = CallbackOutcome.APPLIED
        return outcome


@dataclass
class World:
    fake: PaykassmaFake
    connector: PaykassmaConnector
    receiver: Receiver


@asynccontextmanager
async def open_world(fake: PaykassmaFake | None = None,
                     **settings: str) -> AsyncGenerator[World, None]:
    """A started fake, a connector pointed at it, and a listener the fake posts back to."""
    fake = fake or PaykassmaFake(postback_attempts=6, retry_delay_s=0.02)
    await fake.start()
    receiver = Receiver(connector=None)  # type: ignore[arg-type]
    app = web.Application()
    app.router.add_post("/callbacks/paykassma/main", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"http://127.0.0.1:{port}/callbacks/paykassma/main"
    receiver.connector = PaykassmaConnector(account_for(fake, receiver.url, **settings))
    fake.postback_url = receiver.url  # Paykassma's back-office postback URL setting
    try:
        yield World(fake, receiver.connector, receiver)
    finally:
        await receiver.connector.close()
        await fake.stop()
        await runner.cleanup()
