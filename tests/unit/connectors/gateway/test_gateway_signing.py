"""Signature vectors computed outside our code (openssl dgst -sha512 -hmac over the strings
written out by hand from the document's rule)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from malipo.connectors.gateway.callbacks import verify_callback
from malipo.connectors.gateway.signing import (
    SignatureDepthExceeded,
    php_value,
    sign,
    signed,
    signing_string,
    verify,
)
from malipo.domain.errors import CallbackRejected

DOC_SECRET = (
    "cf11635572c1e8d77297207152dc0791ad91f22b32d23c758ce3ba2637202ad8"
    "f7290ba41f2243cccf32edde1dfb8bf0f5dea62525309e293b3adb2c76eed6a5"
)
# The document's PHP $postData, in its order.
DOC_PAYLOAD = {
    "merchant_id": "fffed61be9780b97c5e4c65e4e07bb6b",
    "provider_id": 10,
    "client_id": "254000000000",
    "country": "KE",
    "order_id": "order_3444298767545",
    "amount": 1000,
    "currency": "KES",
    "callback_url": "https://my.callback.url",
}
DOC_DIGEST = (
    "a724c9ebe2b15fca52cf5ad427164db7acef0f7c3f4ea1b3c8a3d07706ac4c2e"
    "6d0125a452d86e220f5c21686f6239434a490279e61641d33de5fb213e4ef8f2"
)
NESTED = {
    "merchant_id": "m1", "order_id": "o-1", "amount": "1100.00",
    "extra": {"otp": "5647", "customer_name": "Ama"}, "signature": "ignored",
}
NESTED_DIGEST = (
    "70fcd27b6add14eada2a747e08123a8fe8faa6b8587ec5eaed46e35a28db262c"
    "a73b6ef2ea54fe16ba6e19870b21b00de76e3749234cb20908e5bc19259ad3e9"
)
PHP_VALUES = {"a": True, "b": False, "c": None, "d": Decimal("100.50"), "e": [1, {"f": "g"}]}
PHP_DIGEST = (
    "798b3319f0715f1f366d807ecfc7f18c1bf243ea77aec6321a297f518ef19d9c"
    "5e03749daf55fe4237cab66b5cb878460e09d774f69325988d3d02b538838f0c"
)


def test_flat_vector_from_the_document() -> None:
    assert sign(DOC_PAYLOAD, DOC_SECRET) == DOC_DIGEST


def test_nested_fields_are_flattened_with_the_parent_prefix() -> None:
    assert signing_string(NESTED) == "merchant_idm1order_ido-1amount1100.00" \
        "extra.otp5647extra.customer_nameAma"
    assert sign(NESTED, "secret-test") == NESTED_DIGEST


def test_php_rendering_of_bools_null_decimals_and_lists() -> None:
    assert signing_string(PHP_VALUES) == "a1bcd100.5e.01e.1.fg"
    assert sign(PHP_VALUES, "k") == PHP_DIGEST


@pytest.mark.parametrize(("value", "text"), [
    (True, "1"), (False, ""), (None, ""), (14, "14"), (Decimal("100"), "100"),
    (Decimal("100.00"), "100"), (100.0, "100"), (100.5, "100.5"), ("100.00", "100.00"),
])
def test_php_value(value: object, text: str) -> None:
    assert php_value(value) == text


def test_order_matters_and_signature_is_excluded_at_any_depth() -> None:
    reordered = dict(reversed(list(DOC_PAYLOAD.items())))
    assert sign(reordered, DOC_SECRET) != DOC_DIGEST
    with_sig = {**DOC_PAYLOAD, "signature": "abc"}
    assert sign(with_sig, DOC_SECRET) == DOC_DIGEST
    nested_sig = {"a": {"signature": "x", "b": "c"}}
    assert signing_string(nested_sig) == "a.bc"


def test_signed_appends_signature_last() -> None:
    body = signed({**DOC_PAYLOAD, "signature": "stale"}, DOC_SECRET)
    assert list(body)[-1] == "signature"
    assert body["signature"] == DOC_DIGEST


def test_verify_accepts_current_or_previous_secret_and_rejects_the_rest() -> None:
    body = signed(NESTED, "secret-test")
    assert verify(body, "secret-test")
    assert verify(body, ["new-secret", "secret-test"])
    assert verify({**body, "signature": body["signature"].upper()}, "secret-test")
    assert not verify(body, "other")
    assert not verify({**body, "amount": "1100.01"}, "secret-test")
    assert not verify({k: v for k, v in body.items() if k != "signature"}, "secret-test")
    assert not verify({**body, "signature": 5}, "secret-test")
    assert not verify(body, ["", ""])


def test_recursion_limit_as_in_the_php_sample() -> None:
    deep: dict[str, object] = {"leaf": "x"}
    for _ in range(16):
        deep = {"n": deep}
    with pytest.raises(SignatureDepthExceeded):
        sign(deep, "k")


def test_a_callback_nested_past_the_recursion_limit_is_rejected_not_raised() -> None:
    deep: dict[str, object] = {"leaf": "x"}
    for _ in range(16):
        deep = {"n": deep}
    raw = json.dumps({"merchant_id": "m", "extra": deep, "signature": "0" * 128}).encode()
    with pytest.raises(CallbackRejected, match="signature"):
        verify_callback(raw, ("k",), "m")
