"""Money as the contract carries it: integer minor units of an ISO 4217 currency.

The client cannot import the service's domain, so it keeps its own exponent table; a test
checks that it agrees with the service's (service/malipo/domain/money.py).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from malipo.payments.v1 import money_pb2

# A currency missing here is refused rather than guessed: a wrong exponent moves money 100x.
EXPONENTS: dict[str, int] = {
    "AOA": 2, "BIF": 0, "BWP": 2, "CDF": 2, "CVE": 2, "DJF": 0, "DZD": 2, "EGP": 2, "ERN": 2,
    "ETB": 2, "EUR": 2, "GBP": 2, "GHS": 2, "GMD": 2, "GNF": 0, "KES": 2, "KMF": 0, "LRD": 2,
    "LSL": 2, "LYD": 3, "MAD": 2, "MGA": 2, "MRU": 2, "MUR": 2, "MWK": 2, "MZN": 2, "NAD": 2,
    "NGN": 2, "RWF": 0, "SCR": 2, "SDG": 2, "SLE": 2, "SOS": 2, "SSP": 2, "STN": 2, "SZL": 2,
    "TND": 3, "TZS": 2, "UGX": 0, "USD": 2, "XAF": 0, "XOF": 0, "ZAR": 2, "ZMW": 2, "ZWG": 2,
}


class UnknownCurrency(ValueError):
    """The code is not an ISO 4217 currency this client knows the exponent of."""


class InexactAmount(ValueError):
    """The decimal amount does not fit the currency's minor unit exactly."""


def exponent(currency: str) -> int:
    try:
        return EXPONENTS[currency]
    except KeyError:
        raise UnknownCurrency(currency) from None


def to_minor(amount: Decimal | str | int, currency: str) -> int:
    """Decimal("1500.00"), "KES" -> 150000. Refuses floats and amounts finer than the unit."""
    if isinstance(amount, float):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise TypeError("money is never a float: pass a Decimal or a string")
    places = exponent(currency)
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(amount)
    except InvalidOperation:
        raise InexactAmount(f"not a number: {amount!r}") from None
    if not value.is_finite():
        raise InexactAmount(f"not a finite amount: {amount!r}")
    scaled = value.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise InexactAmount(f"{amount} has more than {places} decimals for {currency}")
    return int(scaled)


def to_decimal(minor: int, currency: str) -> Decimal:
    """150000, "KES" -> Decimal("1500.00"); 500, "XOF" -> Decimal("500")."""
    places = exponent(currency)
    return Decimal(minor).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def money(amount: Decimal | str | int, currency: str) -> money_pb2.Money:
    """The contract's Money message for a decimal amount."""
    return money_pb2.Money(amount_minor=to_minor(amount, currency), currency=currency)


def decimal_of(value: money_pb2.Money) -> Decimal:
    """The decimal amount of a Money message."""
    return to_decimal(value.amount_minor, value.currency)
