"""Fixtures: the fake gateway, a callback receiver that answers through the connector (the
real listener comes later), and a connector pointed at both, all on 127.0.0.1 ports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from gateway_receiver import MakeConnector, MakePayment, Receiver

from malipo.app.connector import (
    ProviderAccount,
)
from malipo.connectors.gateway import GatewayConnector
from malipo.domain.ids import new_payment_id
from malipo.domain.money import Money
from malipo.domain.payments import BankAccount, Customer, Payment
from malipo.domain.status import Direction, Method
from malipo.sandbox.gateway import GatewayFake


@pytest.fixture
async def fake() -> AsyncIterator[GatewayFake]:
    server = GatewayFake(complete_after_s=0.02)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/callbacks/gateway/main", recv.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    recv.url = f"http://127.0.0.1:{port}/callbacks/gateway/main"
    yield recv
    await runner.cleanup()


@pytest.fixture
async def make_connector(fake: GatewayFake, receiver: Receiver
                         ) -> AsyncIterator[MakeConnector]:
    made: list[GatewayConnector] = []

    def make(**settings: str) -> GatewayConnector:
        account = ProviderAccount(
            provider="gateway", name="main", callback_url=receiver.url,
            settings={"base_url": fake.base_url, "public_id": fake.public_id,
                      "merchant_id": fake.merchant_id, "secret_key": fake.secret_key,
                      "timeout_s": "5", **settings})
        connector = GatewayConnector(account)
        made.append(connector)
        if receiver.connector is None:
            receiver.connector = connector
        return connector

    yield make
    for connector in made:
        await connector.close()


@pytest.fixture
def connector(make_connector: MakeConnector) -> GatewayConnector:
    return make_connector()


@pytest.fixture
def make_payment() -> MakePayment:
    def make(*, channel: str = "2390", amount: str = "100.00", currency: str = "KES",
             direction: Direction = Direction.COLLECTION, phone: str = "+254712345678",
             customer: dict[str, Any] | None = None, bank: dict[str, str] | None = None,
             provider_fields: dict[str, str] | None = None, payment_id: str = "") -> Payment:
        now = datetime.now(UTC)
        return Payment(
            id=payment_id or new_payment_id(), tenant="t1", direction=direction,
            provider="gateway", account="main", method=Method.MOBILE_MONEY,
            amount=Money.from_decimal(amount, currency), idempotency_key="k1",
            created_at=now, updated_at=now, channel=channel,
            customer=Customer(phone_number=phone, bank_account=BankAccount(**(bank or {})),
                              **(customer or {})),
            provider_fields=provider_fields or {},
        )
    return make
