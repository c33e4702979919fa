from decimal import Decimal

import pytest

from malipo.domain.money import Currency, InexactAmount, Money, UnknownCurrency


@pytest.mark.parametrize(("text", "currency", "minor"), [
    ("100.00", "KES", 10000), ("100", "XOF", 100), ("20.0000", "KES", 2000),
    (3000, "KES", 300000), ("0.01", "ZAR", 1), ("1.234", "TND", 1234),
])
def test_from_decimal_is_exact(text: str, currency: str, minor: int) -> None:
    assert Money.from_decimal(text, currency).minor == minor


@pytest.mark.parametrize(("text", "currency"), [("100.5", "XOF"), ("1.001", "KES"),
                                                ("abc", "KES"), ("NaN", "KES")])
def test_from_decimal_refuses_what_does_not_fit(text: str, currency: str) -> None:
    with pytest.raises(InexactAmount):
        Money.from_decimal(text, currency)


def test_gateway_format_keeps_two_decimals_for_zero_decimal_currencies() -> None:
    assert Money.of(500, "XOF").format(2) == "500.00"
    assert Money.of(1250, "KES").format() == "12.50"
    assert Money.of(1250, "KES").to_decimal() == Decimal("12.50")


def test_whole_units() -> None:
    assert Money.of(300000, "KES").whole_units() == 3000
    with pytest.raises(InexactAmount):
        Money.of(300050, "KES").whole_units()


def test_unknown_currency() -> None:
    with pytest.raises(UnknownCurrency):
        Currency.of("XYZ")
