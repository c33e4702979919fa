"""The exact-amount guard: an amount is sent only in a form that carries it exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest

from malipo.connectors.amounts import exact_amount
from malipo.domain.errors import InvalidRequest
from malipo.domain.money import Money


@pytest.mark.parametrize(("amount", "decimals", "written"), [
    (Money.of(300000, "KES"), 0, "3000"),
    (Money.of(300000, "KES"), 2, "3000.00"),
    (Money.of(5000, "XOF"), 2, "5000.00"),   # the gateway's two decimals even for XOF
    (Money.of(5000, "XOF"), 0, "5000"),
    (Money.of(1230, "TND"), 2, "1.23"),      # a zero is dropped, nothing else
    (Money.of(0, "ZAR"), 2, "0.00"),
])
def test_exact_amounts_are_written(amount: Money, decimals: int, written: str) -> None:
    value = exact_amount(amount, decimals, provider="P")
    assert format(value, "f") == written
    assert value == amount.to_decimal()


def test_a_fraction_is_refused_where_whole_units_are_taken() -> None:
    with pytest.raises(InvalidRequest) as caught:
        exact_amount(Money.of(300050, "KES"), 0, provider="Paykassma")
    [violation] = caught.value.violations
    assert violation.field == "amount.amount_minor"
    assert violation.description == ("rule whole_units: Paykassma takes whole KES; "
                                     "3000.50 KES has a fractional part")


def test_a_third_decimal_is_refused_where_two_are_taken() -> None:
    with pytest.raises(InvalidRequest) as caught:
        exact_amount(Money.of(1234, "TND"), 2, provider="the gateway")
    [violation] = caught.value.violations
    assert violation.field == "amount.amount_minor"
    assert violation.description.startswith("rule amount_format: the gateway takes 2 decimals")
    assert exact_amount(Money.of(1234, "TND"), 3, provider="P") == Decimal("1.234")
