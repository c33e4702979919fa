"""Standard Webhooks signatures (standardwebhooks.com): the secret's form and the signed text.

    webhook-signature: v1,<base64(HMAC-SHA256(key, f"{msg_id}.{timestamp}.{body}"))>

where the secret is "whsec_" + base64(key). One object per endpoint secret, as
stripe-python's WebhookSignature: built once, it signs every attempt with the key decoded once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
KEY_BYTES = 32  # Standard Webhooks asks for 24 to 64 random bytes


class WebhookSigner:
    """Signs outgoing webhooks with one endpoint's secret. Its repr never shows the key."""

    __slots__ = ("_key",)

    def __init__(self, secret: str) -> None:
        self._key = parse_secret(secret)

    def __repr__(self) -> str:
        return "WebhookSigner(***)"

    def signature(self, msg_id: str, timestamp: int, body: bytes) -> str:
        signed = f"{msg_id}.{timestamp}.".encode() + body
        digest = hmac.new(self._key, signed, hashlib.sha256).digest()
        return "v1," + base64.b64encode(digest).decode()

    def headers(self, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": self.signature(msg_id, timestamp, body),
            "content-type": "application/json",
        }


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def parse_secret(secret: str) -> bytes:
    """The HMAC key of a "whsec_<base64>" secret; ValueError (naming no part of it) if bad."""
    if not secret.startswith(PREFIX):
        raise ValueError(f"a webhook secret starts with {PREFIX!r}")
    try:
        key = base64.b64decode(secret[len(PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"a webhook secret is {PREFIX!r} and base64") from None
    if not 24 <= len(key) <= 64:
        raise ValueError("a webhook secret holds 24 to 64 bytes")
    return key
