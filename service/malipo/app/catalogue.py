"""Provider catalogues: channels, limits and required fields as data, checked generically.

Each connector ships a TOML file (see connectors/*/catalogue.toml) loaded by
`load_catalogue`. `check_payment` turns every broken rule into a field violation naming the
rule, before any provider is called.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers

from malipo.domain.errors import FieldViolation
from malipo.domain.money import Money
from malipo.domain.payments import Payment
from malipo.domain.status import Direction, Method


@dataclass(frozen=True, slots=True)
class PhoneFormat:
    calling_code: str
    national_digits: int
    leading_zero: bool = False
    example: str = ""


@dataclass(frozen=True, slots=True)
class Limits:
    direction: Direction
    min_minor: int = 0
    max_minor: int = 0
    daily_max_minor: int = 0
    multiple_of_minor: int = 0
    required_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str
    country: str
    currency: str
    method: Method
    limits: tuple[Limits, ...] = ()
    phone: PhoneFormat | None = None
    document_types: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)  # connector-specific data

    def limits_for(self, direction: Direction) -> Limits | None:
        return next((lim for lim in self.limits if lim.direction is direction), None)


@dataclass(frozen=True, slots=True)
class ProviderCatalogue:
    display_name: str
    currencies: tuple[str, ...]
    channels: tuple[Channel, ...] = ()
    default_channel: str = ""

    def channel(self, channel_id: str) -> Channel | None:
        return next((c for c in self.channels if c.id == channel_id), None)


def load_catalogue(path: Path) -> ProviderCatalogue:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return catalogue_from_mapping(data)


def catalogue_from_mapping(data: Mapping[str, Any]) -> ProviderCatalogue:
    channels = tuple(_channel(c) for c in data.get("channels", []))
    return ProviderCatalogue(
        display_name=str(data["display_name"]),
        currencies=tuple(data.get("currencies", ())),
        channels=channels,
        default_channel=str(data.get("default_channel", "")),
    )


def _channel(raw: Mapping[str, Any]) -> Channel:
    phone = raw.get("phone")
    known = {"id", "name", "country", "currency", "method", "limits", "phone", "document_types"}
    return Channel(
        id=str(raw["id"]),
        name=str(raw["name"]),
        country=str(raw.get("country", "")),
        currency=str(raw["currency"]),
        method=Method(raw.get("method", "MOBILE_MONEY")),
        limits=tuple(
            Limits(
                direction=Direction(lim["direction"]),
                min_minor=int(lim.get("min_minor", 0)),
                max_minor=int(lim.get("max_minor", 0)),
                daily_max_minor=int(lim.get("daily_max_minor", 0)),
                multiple_of_minor=int(lim.get("multiple_of_minor", 0)),
                required_fields=tuple(lim.get("required_fields", ())),
            )
            for lim in raw.get("limits", [])
        ),
        phone=PhoneFormat(
            calling_code=str(phone["calling_code"]),
            national_digits=int(phone["national_digits"]),
            leading_zero=bool(phone.get("leading_zero", False)),
            example=str(phone.get("example", "")),
        ) if phone else None,
        document_types=tuple(raw.get("document_types", ())),
        extra={k: v for k, v in raw.items() if k not in known},
    )


def field_value(payment: Payment, path: str) -> str:
    """Read "customer.name", "customer.bank_account.bic" or "provider_fields.x"."""
    if path.startswith("provider_fields."):
        return payment.provider_fields.get(path.removeprefix("provider_fields."), "")
    value: object = payment
    for part in path.split("."):
        value = getattr(value, part, "")
    return value if isinstance(value, str) else str(value or "")


def national_number(raw: str, phone: PhoneFormat) -> str | None:
    """The national significant number if `raw` is a valid number of this format, else None.

    Accepts +CC..., CC... and 0... forms; the provider's own rendering is the connector's."""
    digits = "".join(ch for ch in raw if ch.isdigit())
    if raw.strip().startswith("+") or digits.startswith(phone.calling_code):
        if not digits.startswith(phone.calling_code):
            return None
        national = digits[len(phone.calling_code):]
    elif digits.startswith("0"):
        national = digits[1:]
    else:
        national = digits
    if len(national) != phone.national_digits or not national.isdigit():
        return None
    region = phonenumbers.region_code_for_country_code(int(phone.calling_code))
    try:
        parsed = phonenumbers.parse("+" + phone.calling_code + national, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return national


def render_phone(national: str, phone: PhoneFormat) -> str:
    return ("0" + national) if phone.leading_zero else (phone.calling_code + national)


def check_payment(payment: Payment, catalogue: ProviderCatalogue) -> list[FieldViolation]:
    """Every catalogue rule the payment breaks, each naming the rule."""
    violations: list[FieldViolation] = []
    if catalogue.currencies and payment.amount.currency.code not in catalogue.currencies:
        violations.append(FieldViolation(
            "amount.currency", f"rule currency: provider accepts {', '.join(catalogue.currencies)}"
        ))
    channel_id = payment.channel or catalogue.default_channel
    if not catalogue.channels:
        return violations
    channel = catalogue.channel(channel_id)
    if channel is None:
        violations.append(FieldViolation("channel", f"rule channel: unknown channel {channel_id!r}"
                                         if channel_id else "rule channel: required"))
        return violations
    violations.extend(check_channel(payment, channel))
    return violations


def check_channel(payment: Payment, channel: Channel) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    if payment.amount.currency.code != channel.currency:
        out.append(FieldViolation("amount.currency",
                                  f"rule currency: channel {channel.id} takes {channel.currency}"))
        return out
    if payment.country and channel.country and payment.country != channel.country:
        out.append(FieldViolation("country",
                                  f"rule country: channel {channel.id} is in {channel.country}"))
    limits = channel.limits_for(payment.direction)
    if limits is None:
        out.append(FieldViolation("channel", f"rule direction: channel {channel.id} has no "
                                  f"{payment.direction.lower()}s"))
        return out
    out.extend(_check_amount(payment.amount, limits))
    out.extend(_check_required(payment, limits.required_fields))
    if channel.phone is not None and payment.customer.phone_number and national_number(
        payment.customer.phone_number, channel.phone
    ) is None:
        fmt = channel.phone
        out.append(FieldViolation(
            "customer.phone_number",
            f"rule phone_format: expected +{fmt.calling_code} and {fmt.national_digits} digits"
            + (f", for example {fmt.example}" if fmt.example else ""),
        ))
    if channel.document_types and payment.customer.document_type and (
        payment.customer.document_type not in channel.document_types
    ):
        allowed = ", ".join(channel.document_types)
        out.append(FieldViolation("customer.document_type",
                                  f"rule document_type: one of {allowed}"))
    return out


def _check_amount(amount: Money, limits: Limits) -> Iterable[FieldViolation]:
    if limits.min_minor and amount.minor < limits.min_minor:
        yield FieldViolation("amount.amount_minor", "rule min_amount: at least "
                             f"{Money(limits.min_minor, amount.currency)}")
    if limits.max_minor and amount.minor > limits.max_minor:
        yield FieldViolation("amount.amount_minor", "rule max_amount: at most "
                             f"{Money(limits.max_minor, amount.currency)}")
    if limits.multiple_of_minor and amount.minor % limits.multiple_of_minor:
        yield FieldViolation("amount.amount_minor", "rule multiple_of: a multiple of "
                             f"{Money(limits.multiple_of_minor, amount.currency)}")


def _check_required(payment: Payment, required: Iterable[str]) -> Iterable[FieldViolation]:
    for path in required:
        if not field_value(payment, path).strip():
            yield FieldViolation(path, "rule required_field: required by this channel")
