"""Sortable unique ids (ULID layout: 48-bit milliseconds + 80 random bits, Crockford base32).

They are sent to providers as our reference, so they must fit every provider's reference
rules: the gateway allows 128 chars of [A-Za-z0-9_-:.], Paykassma and Kwik take strings.
"""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_ulid(now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return _encode(ms, 10) + _encode(secrets.randbits(80), 16)


def new_payment_id() -> str:
    return "pay_" + new_ulid()


def new_payout_id() -> str:
    return "po_" + new_ulid()


def new_refund_id() -> str:
    return "rf_" + new_ulid()


def new_resolution_id() -> str:
    return "rsl_" + new_ulid()
