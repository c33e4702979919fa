"""Money as integer minor units of an ISO 4217 currency; never a float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# ISO 4217 exponents of the currencies our providers use (and a few common ones). A currency
# not listed here is refused rather than guessed: a wrong exponent moves money by 100x.
_EXPONENTS: dict[str, int] = {
    "AOA": 2, "BIF": 0, "BWP": 2, "CDF": 2, "CVE": 2, "DJF": 0, "DZD": 2, "EGP": 2, "ERN": 2,
    "ETB": 2, "EUR": 2, "GBP": 2, "GHS": 2, "GMD": 2, "GNF": 0, "KES": 2, "KMF": 0, "LRD": 2,
    "LSL": 2, "LYD": 3, "MAD": 2, "MGA": 2, "MRU": 2, "MUR": 2, "MWK": 2, "MZN": 2, "NAD": 2,
    "NGN": 2, "RWF": 0, "SCR": 2, "SDG": 2, "SLE": 2, "SOS": 2, "SSP": 2, "STN": 2, "SZL": 2,
    "TND": 3, "TZS": 2, "UGX": 0, "USD": 2, "XAF": 0, "XOF": 0, "ZAR": 2, "ZMW": 2, "ZWG": 2,
}


class UnknownCurrency(ValueError):
    """The code is not an ISO 4217 currency we know the exponent of."""


class InexactAmount(ValueError):
    """A decimal amount does not fit the currency's minor unit exactly."""


@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    exponent: int

    @classmethod
    def of(cls, code: str) -> Currency:
        try:
            return cls(code, _EXPONENTS[code])
        except KeyError:
            raise UnknownCurrency(code) from None

    @staticmethod
    def known(code: str) -> bool:
        return code in _EXPONENTS

    def __str__(self) -> str:
        return self.code


@dataclass(frozen=True, slots=True)
class Money:
    minor: int
    currency: Currency

    @classmethod
    def of(cls, minor: int, currency: str) -> Money:
        return cls(minor, Currency.of(currency))

    @classmethod
    def from_decimal(cls, value: Decimal | str | int, currency: str) -> Money:
        """Parse a provider's decimal ("100.00", "20.0000", 3000) exactly, or refuse."""
        cur = Currency.of(currency)
        try:
            amount = Decimal(value) if not isinstance(value, Decimal) else value
        except InvalidOperation:
            raise InexactAmount(f"not a number: {value!r}") from None
        if not amount.is_finite():
            raise InexactAmount(f"not a finite amount: {value!r}")
        scaled = amount.scaleb(cur.exponent)
        if scaled != scaled.to_integral_value():
            raise InexactAmount(f"{value} has more than {cur.exponent} decimals for {cur.code}")
        return cls(int(scaled), cur)

    def to_decimal(self) -> Decimal:
        return Decimal(self.minor).scaleb(-self.currency.exponent)

    def format(self, decimals: int | None = None) -> str:
        """Render with a fixed number of decimals (the gateway wants "100.00" even for XOF)."""
        places = self.currency.exponent if decimals is None else decimals
        return f"{self.to_decimal():.{places}f}"

    def whole_units(self) -> int:
        """The amount in whole units, for providers without minor units in their API."""
        value = self.to_decimal()
        if value != value.to_integral_value():
            raise InexactAmount(f"{self.format()} {self.currency.code} is not a whole amount")
        return int(value)

    def __str__(self) -> str:
        return f"{self.format()} {self.currency.code}"
