"""Kwik connector against its fake over real HTTP, with a stand-in callback listener.

The receiver does what the listener will do for this provider, in order: journal the raw
delivery, verify, parse, de-duplicate by event_key, answer with callback_answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from malipo.app.connector import (
    CallbackEvent,
    CallbackOutcome,
    InboundCallback,
    ProviderAccount,
)
from malipo.connectors.kwik import KwikConnector
from malipo.domain.errors import CallbackRejected
from malipo.domain.ids import new_payment_id
from malipo.domain.money import Money
from malipo.domain.payments import BankAccount, Customer, Payment
from malipo.domain.status import Direction, Method
from malipo.sandbox.kwik import ACCOUNT_FOR, KwikFake

API_KEY, API_SECRET = "kwik_key_123", "kwik_secret_456"
BRANCH = {"paid": "051001", "unpaid": "051001", "rejected": "051001", "cancelled": "051001",
          "disputed": "051001", "reversed": "632005", "accepted": "632005",
          "sent_to_bank": "051001", "pending": "250655"}


@dataclass
class Receiver:
    connector: KwikConnector | None = None
    journal: list[InboundCallback] = field(default_factory=list)
    outcomes: list[CallbackOutcome] = field(default_factory=list)
    events: list[CallbackEvent] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        callback = InboundCallback(
            provider="kwik", account="main",
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.read(), query=dict(request.query),
            remote=request.remote or "", received_at=datetime.now(UTC),
        )
        self.journal.append(callback)
        assert self.connector is not None
        try:
            self.connector.verify_callback(callback)
            events = self.connector.parse_callback(callback)
        except CallbackRejected:
            outcome = CallbackOutcome.REJECTED
        else:
            fresh = [e for e in events if e.event_key not in self.seen]
            self.seen.update(e.event_key for e in events)
            self.events.extend(fresh)
            outcome = CallbackOutcome.APPLIED if fresh else CallbackOutcome.DUPLICATE
        self.outcomes.append(outcome)
        answer = self.connector.callback_answer(outcome)
        return web.Response(status=answer.status, body=answer.body,
                            content_type=answer.content_type)


@pytest.fixture
async def fake() -> AsyncIterator[KwikFake]:
    server = KwikFake(api_key=API_KEY, api_secret=API_SECRET)
    await server.start()
    yield server
    await server.stop()


ConnectorFactory = Callable[..., KwikConnector]


@pytest.fixture
async def make_connector(fake: KwikFake) -> AsyncIterator[ConnectorFactory]:
    made: list[KwikConnector] = []

    def build(**overrides: str) -> KwikConnector:
        settings = {"base_url": fake.api_url, "api_key": API_KEY, "api_secret": API_SECRET,
                    "payment_methods_id": "pam_debit_order", "batch_window_s": "0.05",
                    "timeout_s": "5", **overrides}
        connector = KwikConnector(ProviderAccount("kwik", "main", settings))
        made.append(connector)
        return connector

    yield build
    for connector in made:
        await connector.close()


@pytest.fixture
def connector(make_connector: ConnectorFactory) -> KwikConnector:
    return make_connector()


PaymentFactory = Callable[..., Payment]


@pytest.fixture
def make_payment() -> PaymentFactory:
    def build(outcome: str = "paid", minor: int = 50025, **fields: Any) -> Payment:
        now = datetime.now(UTC)
        provider_fields = {"action_date": "2025-03-01", **fields.pop("provider_fields", {})}
        return Payment(
            id=fields.pop("id", new_payment_id()), tenant="t1", direction=Direction.COLLECTION,
            provider="kwik", account="main", method=Method.DEBIT_ORDER,
            amount=Money.of(minor, "ZAR"), idempotency_key=new_payment_id(),
            created_at=now, updated_at=now, country="ZA",
            customer=Customer(name="Thandi Nkosi", email="t@example.co.za",
                              bank_account=BankAccount(
                                  account_number=ACCOUNT_FOR[outcome],
                                  bank_code=BRANCH[outcome], holder_name="T NKOSI")),
            provider_fields=provider_fields, **fields,
        )
    return build


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    sink = Receiver()
    app = web.Application()
    app.router.add_post("/callbacks/kwik/main", sink.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server: Any = site._server
    port = server.sockets[0].getsockname()[1]
    sink.url = f"http://127.0.0.1:{port}/callbacks/kwik/main"
    yield sink
    await runner.cleanup()
