"""A callback is authentic when it matches any of the account's configured secrets: the current
one, or one still accepted while the provider's key is rotated."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable


def _itself(secret: str) -> str:
    return secret


def any_secret_matches(received: str, secrets: Iterable[str],
                       expected: Callable[[str], str] = _itself) -> bool:
    """True when `received` equals `expected(secret)` (the secret itself by default) for one
    of the non-empty `secrets`. Every secret is tried, each compare in constant time, so the
    time taken says neither which secret matched nor how much of a guess was right. An empty
    `received` matches nothing."""
    if not received:
        return False
    given = received.encode()
    matched = False
    for secret in secrets:
        if secret:
            matched |= hmac.compare_digest(given, expected(secret).encode())
    return matched
