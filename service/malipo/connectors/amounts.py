"""The exact-amount guard: an amount goes to a provider only in a form that carries it exactly.

A provider that takes whole units (decimals=0) or a fixed number of decimals cannot carry every
amount of every currency; rounding would move money, so such an amount is refused as a field
violation before anything is sent.
"""

from __future__ import annotations

from decimal import Decimal

from malipo.domain.errors import FieldViolation, InvalidRequest
from malipo.domain.money import Money


def exact_amount(amount: Money, decimals: int, *, provider: str) -> Decimal:
    """`amount` with exactly `decimals` places, or InvalidRequest on amount.amount_minor when
    that would drop a non-zero digit."""
    value = amount.to_decimal()
    written = value.quantize(Decimal(1).scaleb(-decimals))
    if written != value:
        if decimals == 0:
            rule = (f"rule whole_units: {provider} takes whole {amount.currency.code}; "
                    f"{amount} has a fractional part")
        else:
            rule = (f"rule amount_format: {provider} takes {decimals} decimals; {amount} "
                    "has more")
        raise InvalidRequest(FieldViolation("amount.amount_minor", rule))
    return written
