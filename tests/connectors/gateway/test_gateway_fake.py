"""The fake accepts exactly what the document shows: no field it does not list, its
provider ids' own rules, and a repeated payment_c2b answered identically even with an OTP."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from gateway_document_samples import C2B_REQUEST, as_bytes, as_json
from gateway_receiver import MakePayment

from malipo.app.connector import CallContext
from malipo.connectors.gateway import GatewayConnector
from malipo.connectors.gateway.signing import signed
from malipo.sandbox.gateway import B2C, C2B, GatewayFake, Outcome, Refused

SAMPLE: dict[str, Any] = as_json(C2B_REQUEST)


def _checked(fake: GatewayFake, body: dict[str, Any], operation: int = C2B) -> None:
    fake.check_payment(as_bytes(signed(body, fake.secret_key)), operation)


def _body(**changes: Any) -> dict[str, Any]:
    body = {k: v for k, v in SAMPLE.items() if k != "signature"}
    return {k: v for k, v in (body | changes).items() if v is not None}


@pytest.fixture
def offline() -> GatewayFake:
    return GatewayFake(merchant_id=SAMPLE["merchant_id"])


@pytest.mark.parametrize(("changes", "named"), [
    ({"note": "x"}, "note"),                                   # not in the field table
    ({"extra": {"customer_phone": "1"}}, "extra.customer_phone"),
    ({"extra": {"otp": 5647}}, "extra.otp"),                   # extra values are strings
    ({"amount": "100"}, "amount"),
    ({"amount": 100}, "amount"),
    ({"order_id": "a/b"}, "order_id"),
    ({"provider_id": 4242}, "provider_id"),
    ({"customer_id": None}, "customer_id"),
    ({"provider_id": 2390, "customer_id": "0712345678"}, "customer_id"),
    ({"provider_id": 2390, "currency": "UGX", "customer_id": "254712345678"}, "currency"),
    ({"provider_id": 2390, "country": "TZ", "customer_id": "254712345678"}, "country"),
    ({"provider_id": "2198", "currency": "CDF", "country": "CD",
      "customer_id": "0991234567"}, "customer_id"),            # Airtel DRC: no leading 0
    ({"extra": {"customer_doc_type": "library_card"}}, "extra.customer_doc_type"),
])
def test_what_the_document_does_not_show_is_refused(
        offline: GatewayFake, changes: dict[str, Any], named: str) -> None:
    with pytest.raises(Refused) as refused:
        _checked(offline, _body(**changes))
    assert refused.value.http == 400
    assert named in refused.value.message


@pytest.mark.parametrize("changes", [
    {"country": None},                                         # optional, absent
    {"callback_url": "https://my.callback.url"},
    {"provider_id": "14"},                                     # the examples send strings too
    {"provider_id": "2198", "currency": "CDF", "country": "CD", "customer_id": "991234567"},
    {"provider_id": 2197, "currency": "CDF", "country": "CD", "customer_id": "0812345678"},
    {"provider_id": 2359, "currency": "XOF", "country": "TG", "customer_id": "22890123456"},
    {"extra": {"otp": "5647", "customer_name": "Ama"}},
])
def test_what_the_document_shows_is_accepted(offline: GatewayFake,
                                             changes: dict[str, Any]) -> None:
    _checked(offline, _body(**changes))


def test_required_extras_follow_the_provider_section(offline: GatewayFake) -> None:
    payout = _body(provider_id=2303, currency="XOF", country="CI", customer_id="2250701234567",
                   amount="1000.00")
    with pytest.raises(Refused, match=r"extra\.customer_name"):
        _checked(offline, payout, B2C)
    _checked(offline, payout | {"extra": {"customer_name": "Awa Kone"}}, B2C)
    _checked(offline, payout, C2B)  # the section asks for the name on B2C only
    with pytest.raises(Refused, match="provider_id"):
        _checked(offline, _body(provider_id=707, currency="NGN", country="NG"), B2C)


async def test_a_repeated_c2b_with_an_otp_gets_the_identical_first_answer(
        connector: GatewayConnector, fake: GatewayFake, make_payment: MakePayment) -> None:
    """order_id is the idempotency key: the OTP cannot ride on a repeat of payment_c2b."""
    fake.scenarios["254712345678"] = Outcome.OTP
    payment = make_payment()
    await connector.create_payment(payment, CallContext())
    first = json.loads(fake.calls_to("/payment_c2b")[0].body)
    repeat = signed({**{k: v for k, v in first.items() if k != "signature"},
                     "extra": {"otp": fake.otp}}, fake.secret_key)
    async with aiohttp.ClientSession() as http, http.post(
            f"{fake.base_url}/api/v1/{fake.public_id}/payment_c2b", json=repeat) as resp:
        answer = await resp.json()
    assert answer == fake.orders[payment.id].first_response
    assert answer["confirm_type"] == 1
    assert fake.orders[payment.id].confirm_type == 1  # still waiting for its confirmation


@pytest.mark.parametrize("signature", ["é" * 128, 5, None])
def test_a_hostile_signature_is_a_401_not_a_crash(offline: GatewayFake, signature: Any) -> None:
    body = _body() | {"signature": signature}
    with pytest.raises(Refused) as refused:
        offline.check_payment(as_bytes(body), C2B)
    assert refused.value.http == 401


def test_nesting_deeper_than_the_php_sample_allows_is_refused(offline: GatewayFake) -> None:
    deep: dict[str, Any] = {"otp": "1"}
    for _ in range(16):
        deep = {"n": deep}
    body = _body(extra=deep) | {"signature": "0" * 128}
    with pytest.raises(Refused) as refused:
        offline.check_payment(as_bytes(body), C2B)
    assert refused.value.http == 401
