from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from malipo.connectors import unlisted
from malipo.domain.money import Money
from malipo.domain.payments import BankAccount, Customer, Payment
from malipo.domain.status import Direction, Method

MakePayment = Callable[..., Payment]


@pytest.fixture
def make_payment() -> MakePayment:
    def make(*, channel: str = "2390", amount: str = "100.00", currency: str = "KES",
             direction: Direction = Direction.COLLECTION, phone: str = "+254712345678",
             country: str = "", customer: dict[str, Any] | None = None,
             bank: dict[str, str] | None = None, provider_fields: dict[str, str] | None = None,
             payment_id: str = "pay_01JTEST0000000000000000001") -> Payment:
        now = datetime.now(UTC)
        return Payment(
            id=payment_id, tenant="t1", direction=direction, provider="gateway",
            account="main", method=Method.MOBILE_MONEY,
            amount=Money.from_decimal(amount, currency), idempotency_key="k1",
            created_at=now, updated_at=now, channel=channel, country=country,
            customer=Customer(phone_number=phone, bank_account=BankAccount(**(bank or {})),
                              **(customer or {})),
            provider_fields=provider_fields or {},
        )
    return make


@pytest.fixture(autouse=True)
def _each_test_sees_its_own_first_report() -> None:
    """An unlisted value is logged once per process: tests that expect its one line must not
    find it already said by an earlier test."""
    unlisted._report.cache_clear()
