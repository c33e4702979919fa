"""Masking of secrets, phone numbers and account numbers, for logs, errors and exchange logs.

One set of rules everywhere (ActiveMerchant scrubs transcripts the same way): keys that name
secrets are replaced whole; keys that name phone or account numbers keep their last 3 digits;
any other run of 9 or more digits in free text is treated as a number and masked too.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

_SECRET_KEY = re.compile(
    r"(secret|password|passwd|token|signature|sign|api[_-]?key|access[_-]?key|private|"
    r"authorization|x-api-key|hash|otp|pin|credential|cookie)",
    re.IGNORECASE,
)
_NUMBER_KEY = re.compile(
    r"(phone|msisdn|mobile|account_number|accountnumber|account_no|iban|meter|card|"
    r"document_number|wallet|bank_account|destination)",
    re.IGNORECASE,
)
# A number key naming a category, not a number ("wallet_type": "mpesa", "card_brand"):
# nothing in it to hide, and masking it hid what a reader of an event most needs.
_CATEGORY_KEY = re.compile(r"(type|kind|brand)$", re.IGNORECASE)
_LONG_DIGITS = re.compile(r"(?<![\w.])\+?\d[\d ]{7,}\d(?![\w.])")
_SECRET_IN_TEXT = re.compile(
    r"((?:secret|api_key|apikey|token|signature|password|private_key)=)[^&\s\"']+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
MASK = "***"


def mask_number(value: str) -> str:
    digits = [c for c in value if c.isdigit()]
    if len(digits) <= 4:
        return MASK
    return MASK + "".join(digits[-3:])


_SECRET, _NUMBER, _TEXT = 1, 2, 3


def _rule_of(key: str) -> int:
    if _SECRET_KEY.search(key):
        return _SECRET
    if _NUMBER_KEY.search(key) and not _CATEGORY_KEY.search(key):
        return _NUMBER
    return _TEXT


_cached_rule = functools.lru_cache(maxsize=4096)(_rule_of)
_CACHED_KEY_LENGTH = 64


def _rule(key: str) -> int:
    """What a key's value gets. Cached for short keys: the same few dozen (headers, provider
    fields) come back on every callback and log line, and the case-blind searches cost ~2 us
    each. A flood of made-up keys only churns the bounded cache, and a long key (a body can
    make one as large as itself) is never kept."""
    return _cached_rule(key) if len(key) <= _CACHED_KEY_LENGTH else _rule_of(key)


def is_secret_key(key: str) -> bool:
    return _rule(key) == _SECRET


def mask_text(text: str) -> str:
    # Each pattern is tried only where it could match: `key=` needs "=", "Bearer x" 8
    # characters, a long number 9 (most values are short words, read on every callback).
    if "=" in text:
        text = _SECRET_IN_TEXT.sub(lambda m: m.group(1) + MASK, text)
    if len(text) >= 8:
        text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    if len(text) >= 9:
        text = _LONG_DIGITS.sub(lambda m: mask_number(m.group(0)), text)
    return text


def mask_value(key: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        return mask_mapping(value)  # type: ignore[arg-type]
    if isinstance(value, list):
        return [mask_value(key, v) for v in value]  # type: ignore[misc]
    if value is None or isinstance(value, bool):
        return value
    rule = _rule(key)
    if rule == _SECRET:
        return MASK
    if rule == _NUMBER:
        return mask_number(str(value))
    if isinstance(value, str):
        return mask_text(value)
    return value


def mask_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): mask_value(str(k), v) for k, v in data.items()}


def mask_body(body: bytes | str, limit: int = 16384) -> str:
    """Mask a request or response body: JSON structurally, anything else as text."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text[:limit]
    try:
        parsed = json.loads(text)
    except ValueError:
        if "=" in text and "&" in text:
            return mask_form(text)
        return mask_text(text)
    return json.dumps(_mask_json(parsed), ensure_ascii=False, separators=(",", ":"))


def _mask_json(value: Any) -> Any:
    if isinstance(value, dict):
        return mask_mapping(value)  # type: ignore[arg-type]
    if isinstance(value, list):
        return [_mask_json(v) for v in value]  # type: ignore[misc]
    if isinstance(value, str):
        return mask_text(value)
    return value


def mask_form(text: str) -> str:
    parts = []
    for pair in text.split("&"):
        key, _, value = pair.partition("=")
        parts.append(f"{key}={mask_value(key, value)}")
    return "&".join(parts)


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): (MASK if is_secret_key(k) else v) for k, v in headers.items()}
