"""Commands the use cases accept, their input validation and their idempotency fingerprint."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from malipo.domain.errors import FieldViolation, InvalidRequest
from malipo.domain.money import Currency
from malipo.domain.payments import Customer, plain
from malipo.domain.status import Direction, Method, Status

MAX_KEY_LENGTH = 255
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
MAX_TEXT = 1024
# Largest amount we accept: far above any provider's maximum, far below int64 overflow.
MAX_AMOUNT_MINOR = 10**15


@dataclass(frozen=True, slots=True)
class CreatePayment:
    tenant: str
    idempotency_key: str
    direction: Direction
    provider: str
    amount_minor: int
    currency: str
    account: str = ""
    method: Method = Method.UNSPECIFIED
    channel: str = ""
    country: str = ""
    customer: Customer = field(default_factory=Customer)
    description: str = ""
    provider_fields: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)

    def fingerprint(self) -> str:
        return fingerprint(plain(self))


@dataclass(frozen=True, slots=True)
class ConfirmPayment:
    tenant: str
    idempotency_key: str
    payment_id: str
    otp: str = ""
    provider_transaction_id: str = ""

    def fingerprint(self) -> str:
        return fingerprint(plain(self))


@dataclass(frozen=True, slots=True)
class ChangePayment:
    """Refund or cancel."""

    tenant: str
    idempotency_key: str
    payment_id: str
    reason: str = ""

    def fingerprint(self) -> str:
        return fingerprint(plain(self))


@dataclass(frozen=True, slots=True)
class RefundPayment:
    """A refund of `amount_minor` (None: all that remains) in the payment's currency."""

    tenant: str
    idempotency_key: str
    payment_id: str
    reason: str = ""
    amount_minor: int | None = None
    currency: str = ""

    def fingerprint(self) -> str:
        if self.amount_minor is None:  # a key stored before partial refunds still replays
            return ChangePayment(self.tenant, self.idempotency_key, self.payment_id,
                                 self.reason).fingerprint()
        return fingerprint(plain(self))


def check_refund(cmd: RefundPayment) -> None:
    v = check_key(cmd.idempotency_key)
    if cmd.amount_minor is not None:
        v += check_amount(cmd.amount_minor, cmd.currency)
    if len(cmd.reason) > MAX_TEXT:
        v.append(FieldViolation("reason", f"at most {MAX_TEXT} characters"))
    if v:
        raise InvalidRequest(v)
    check_payment_id(cmd.payment_id)


MAX_EVIDENCE = 4096


@dataclass(frozen=True, slots=True)
class ResolvePayment:
    """An operator's resolution; `operator` and `key_id` come from the key, not the request."""

    operator: str
    key_id: str
    idempotency_key: str
    tenant: str
    payment_id: str
    resolution: Status
    reason: str
    evidence: str

    def fingerprint(self) -> str:
        return fingerprint({k: v for k, v in plain(self).items() if k != "key_id"})


@dataclass(frozen=True, slots=True)
class ResolveRefund:
    """An operator's resolution of a refund; `operator` and `key_id` come from the key."""

    operator: str
    key_id: str
    idempotency_key: str
    tenant: str
    refund_id: str
    resolution: Status
    reason: str
    evidence: str

    def fingerprint(self) -> str:
        return fingerprint({k: v for k, v in plain(self).items() if k != "key_id"})


def check_resolve(cmd: ResolvePayment | ResolveRefund) -> None:
    v = check_key(cmd.idempotency_key)
    what = "payment" if isinstance(cmd, ResolvePayment) else "refund"
    if not cmd.tenant:
        v.append(FieldViolation("tenant", f"required: the tenant that owns the {what}"))
    for name, value, most in (("reason", cmd.reason, MAX_TEXT),
                              ("evidence", cmd.evidence, MAX_EVIDENCE)):
        if not value.strip():
            v.append(FieldViolation(name, "required"))
        elif len(value) > most:
            v.append(FieldViolation(name, f"at most {most} characters"))
    if v:
        raise InvalidRequest(v)
    if isinstance(cmd, ResolvePayment):
        check_payment_id(cmd.payment_id)
    else:
        check_payment_id(cmd.refund_id, "refund_id")


# The canonical form stored fingerprints were made with: changing it would make every stored
# key a mismatch. One encoder for all: json.dumps builds a new one per call with these options.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def fingerprint(data: Mapping[str, object]) -> str:
    body = {k: v for k, v in data.items() if k != "idempotency_key"}
    return hashlib.sha256(_CANONICAL.encode(body).encode()).hexdigest()


def check_key(key: str) -> list[FieldViolation]:
    if not key:
        return [FieldViolation("idempotency_key", "required")]
    if len(key) > MAX_KEY_LENGTH:
        return [FieldViolation("idempotency_key", f"at most {MAX_KEY_LENGTH} characters")]
    if not key.isascii() or not key.isprintable():
        return [FieldViolation("idempotency_key", "printable ASCII only")]
    return []


def check_amount(amount_minor: int, currency: str) -> list[FieldViolation]:
    """An amount's rules for every request that carries one (a payment, a partial refund)."""
    v: list[FieldViolation] = []
    if amount_minor <= 0:
        v.append(FieldViolation("amount.amount_minor", "must be positive"))
    elif amount_minor > MAX_AMOUNT_MINOR:
        v.append(FieldViolation("amount.amount_minor", "too large"))
    if not currency:
        v.append(FieldViolation("amount.currency", "required"))
    elif not Currency.known(currency):
        v.append(FieldViolation("amount.currency", f"unknown ISO 4217 currency {currency!r}"))
    return v


def check_create(cmd: CreatePayment) -> None:
    """Input rules that hold for every provider; provider rules come after (catalogue)."""
    v = check_key(cmd.idempotency_key) + check_amount(cmd.amount_minor, cmd.currency)
    if cmd.country and (len(cmd.country) != 2 or not cmd.country.isalpha()
                        or not cmd.country.isupper()):
        v.append(FieldViolation("country", "ISO 3166-1 alpha-2, upper case"))
    if len(cmd.metadata) > MAX_METADATA_KEYS:
        v.append(FieldViolation("metadata", f"at most {MAX_METADATA_KEYS} keys"))
    for key, value in cmd.metadata.items():
        if not key or len(key) > MAX_METADATA_KEY:
            v.append(FieldViolation(f"metadata[{key[:20]}]", f"key of 1 to {MAX_METADATA_KEY} "
                                    "characters"))
        if len(value) > MAX_METADATA_VALUE:
            v.append(FieldViolation(f"metadata[{key[:20]}]", f"value of at most "
                                    f"{MAX_METADATA_VALUE} characters"))
    for name, value in (("description", cmd.description),
                        ("customer.name", cmd.customer.name),
                        ("customer.email", cmd.customer.email),
                        ("customer.reference", cmd.customer.reference)):
        if len(value) > MAX_TEXT:
            v.append(FieldViolation(name, f"at most {MAX_TEXT} characters"))
    phone = cmd.customer.phone_number
    if phone and not _phone_like(phone):
        v.append(FieldViolation("customer.phone_number", "digits, optionally with a leading +"))
    email = cmd.customer.email
    if email and ("@" not in email or email.startswith("@") or email.endswith("@")):
        v.append(FieldViolation("customer.email", "not an email address"))
    if v:
        raise InvalidRequest(v)


def _phone_like(phone: str) -> bool:
    body = phone[1:] if phone.startswith("+") else phone
    cleaned = body.replace(" ", "").replace("-", "")
    return cleaned.isdigit() and 6 <= len(cleaned) <= 15


def check_payment_id(payment_id: str, field_name: str = "payment_id") -> None:
    if not payment_id:
        raise InvalidRequest(FieldViolation(field_name, "required"))
    if len(payment_id) > 64 or not payment_id.isascii():
        raise InvalidRequest(FieldViolation(field_name, "not a Malipo id"))
