"""Masking of secrets, phone numbers and account numbers, for logs, errors and exchange logs.

One set of rules everywhere (ActiveMerchant scrubs transcripts the same way): keys that name
secrets are replaced whole; keys that name phone or account numbers keep their last 3 digits;
any other run of 9 or more digits in free text is treated as a number and masked too.
"""

from __future__ import annotations

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


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def mask_text(text: str) -> str:
    text = _SECRET_IN_TEXT.sub(lambda m: m.group(1) + MASK, text)
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    return _LONG_DIGITS.sub(lambda m: mask_number(m.group(0)), text)


def mask_value(key: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        return mask_mapping(value)  # type: ignore[arg-type]
    if isinstance(value, list):
        return [mask_value(key, v) for v in value]  # type: ignore[misc]
    if value is None or isinstance(value, bool):
        return value
    if is_secret_key(key):
        return MASK
    if _NUMBER_KEY.search(key) and not _CATEGORY_KEY.search(key):
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
