"""JamboPay fixtures: the fake on an ephemeral port, a stand-in callback listener, the
connector pointed at both, and a factory of payouts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from jambopay_support import Listener, PayoutFactory, account_for

from malipo.connectors.jambopay import JambopayConnector
from malipo.domain.ids import new_payout_id
from malipo.domain.money import Money
from malipo.domain.payments import Customer, Payment
from malipo.domain.status import Direction, Method
from malipo.sandbox.jambopay import JambopayFake


@pytest.fixture
async def fake() -> AsyncIterator[JambopayFake]:
    provider = JambopayFake()
    provider.chaos.hang_seconds = 1.0
    await provider.start()
    yield provider
    await provider.stop()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    server = Listener()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def connector(fake: JambopayFake, listener: Listener) -> AsyncIterator[JambopayConnector]:
    conn = JambopayConnector(account_for(fake, listener))
    yield conn
    await conn.close()


@pytest.fixture
def payout() -> PayoutFactory:
    def make(*, amount_minor: int = 2000, channel: str = "kplc", meter: str = "14234567890",
             phone: str = "+254712345678", auto_commit: bool = False, **fields: str) -> Payment:
        now = datetime.now(UTC)
        provider_fields = dict(fields)
        if channel == "kplc":
            provider_fields["meter_number"] = meter
        if auto_commit:
            provider_fields["auto_commit"] = "true"
        return Payment(
            id=new_payout_id(), tenant="t1", direction=Direction.PAYOUT, provider="jambopay",
            account="test",
            method=Method.BILL_PAYMENT if channel == "kplc" else Method.AIRTIME,
            amount=Money.of(amount_minor, "KES"), idempotency_key="k-" + new_payout_id(),
            created_at=now, updated_at=now, channel=channel, country="KE",
            customer=Customer(phone_number=phone, name="Wanjiku"),
            provider_fields=provider_fields)

    return make
