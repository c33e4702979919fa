"""The gateway's HMAC-SHA512 signature over `key + value` of every field, in the order sent.

The document's PHP sample walks the payload recursively: nested arrays are flattened with a
`parent.` prefix (`extra.otp5647`), scalars keyed `signature` are skipped at any depth, and the
result is lower-case hex. The sample has a case slip (`$StringForSignature` is returned from the
recursion) that would drop every nested field in PHP; we implement the documented intent
(nested fields included), as NOTES.md section 1 requires.

Values are rendered the way PHP's string interpolation renders them, because the gateway's own
code is PHP: strings verbatim, integers as digits, true as "1", false and null as "", floats in
their shortest form without a trailing ".0" (PHP prints 100.0 as "100"). JSON lists are PHP
arrays too, so their items are flattened with their index (`items.0`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from malipo.connectors.rotation import any_secret_matches

SIGNATURE_FIELD = "signature"
MAX_DEPTH = 16  # the PHP sample's recursion limit


class SignatureDepthExceeded(ValueError):
    """The payload nests deeper than the gateway's own recursion limit."""


def php_value(value: Any) -> str:
    """Render a scalar as PHP's `"$key" . $value` would."""
    if value is None or value is False:
        return ""
    if value is True:
        return "1"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _php_number(Decimal(repr(value)))
    if isinstance(value, Decimal):
        return _php_number(value)
    return str(value)


def _php_number(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def _pairs(data: Mapping[str, Any] | list[Any], prefix: str, depth: int) -> Iterator[str]:
    if depth >= MAX_DEPTH:
        raise SignatureDepthExceeded("recursion level exceeded")
    items: Iterable[tuple[Any, Any]] = (
        data.items() if isinstance(data, Mapping) else enumerate(data)
    )
    for key, value in items:
        if isinstance(value, Mapping | list):
            yield from _pairs(value, f"{prefix}{key}.", depth + 1)  # type: ignore[arg-type]
        elif key != SIGNATURE_FIELD:
            yield f"{prefix}{key}{php_value(value)}"


def signing_string(payload: Mapping[str, Any]) -> str:
    """The exact text that is HMAC'd; exposed for tests and for support tickets."""
    return "".join(_pairs(payload, "", 0))


def sign(payload: Mapping[str, Any], secret: str) -> str:
    """Lower-case hex HMAC-SHA512 of the payload's fields in their order, signature excluded."""
    message = signing_string(payload).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha512).hexdigest()


def signed(payload: Mapping[str, Any], secret: str) -> dict[str, Any]:
    """A copy of the payload with `signature` appended last, as the gateway expects."""
    body = {k: v for k, v in payload.items() if k != SIGNATURE_FIELD}
    body[SIGNATURE_FIELD] = sign(body, secret)
    return body


def verify(payload: Mapping[str, Any], secrets: str | Iterable[str]) -> bool:
    """True when the payload's `signature` matches under one of the secrets (rotation).

    Every candidate is compared in constant time. The document says lower-case hex; an
    upper-case rendering carries the same MAC, so it is accepted too."""
    received = payload.get(SIGNATURE_FIELD)
    if not isinstance(received, str):
        return False
    candidates = [secrets] if isinstance(secrets, str) else secrets
    try:
        return any_secret_matches(received.lower(), candidates,
                                  lambda secret: sign(payload, secret))
    except SignatureDepthExceeded:  # the gateway itself could not have signed it
        return False
