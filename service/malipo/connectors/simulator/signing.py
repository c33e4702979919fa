"""The simulator's callback signature: HMAC-SHA256 over "<timestamp>.<raw body>", sent as
`x-simulator-signature: t=<timestamp>,v1=<hex>`, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from malipo.connectors.rotation import any_secret_matches
from malipo.domain.errors import CallbackRejected

SIGNATURE_HEADER = "x-simulator-signature"
TOLERANCE_S = 300


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secrets: Iterable[str], body: bytes, header: str, now: float) -> None:
    """Raise CallbackRejected unless one of `secrets` signed `body` within TOLERANCE_S."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        raise CallbackRejected("missing or malformed signature") from None
    if abs(now - timestamp) > TOLERANCE_S:
        raise CallbackRejected("signature timestamp outside tolerance")
    if not any_secret_matches(parts.get("v1", ""), secrets,
                              lambda secret: sign(secret, body, timestamp).split("v1=", 1)[1]):
        raise CallbackRejected("signature mismatch")
