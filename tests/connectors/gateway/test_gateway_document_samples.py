"""The document's own samples, fed to both readings: the connector (signing, response and
callback readers) and the fake (its signing and its request checks). Neither reading may
disagree with the document where the document is unambiguous."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from gateway_document_samples import (
    B2C_REQUEST,
    B2C_RESPONSE,
    BF_C2B_REQUEST,
    C2B_REQUEST,
    C2B_RESPONSE,
    C2B_STATUS_REQUEST_WITH_OTP,
    CALLBACK,
    CI_C2B_REQUEST,
    CI_REQUEST_DIGEST,
    NG_B2C_REQUEST,
    NG_C2B_BANK_DETAILS_RESPONSE,
    PHP_SAMPLE_DIGEST,
    SIMULATOR_RESPONSE,
    STATUS_REQUEST,
    STATUS_RESPONSE,
    STATUS_WITH_OTP_DIGEST,
    as_bytes,
    as_json,
    php_post_data,
    php_secret_key,
)
from gateway_receiver import MakePayment

from malipo.app.connector import InboundCallback, ProviderAccount
from malipo.connectors.gateway import GatewayConnector, mapping
from malipo.connectors.gateway.connector import CATALOGUE
from malipo.connectors.gateway.signing import sign, signed, verify
from malipo.domain.errors import CallbackRejected
from malipo.domain.money import Money
from malipo.domain.payments import NextActionKind
from malipo.domain.status import Direction, Status
from malipo.sandbox import gateway as fake_reading
from malipo.sandbox.gateway import B2C, C2B, GatewayFake, Refused

SECRET = php_secret_key()
Readings = list[Callable[[dict[str, Any], str], str]]
BOTH: Readings = [sign, fake_reading.signature]


@pytest.mark.parametrize("signature", BOTH, ids=["connector", "fake"])
def test_the_php_sample_is_a_vector_for_both_readings(
        signature: Callable[[dict[str, Any], str], str]) -> None:
    assert signature(php_post_data(), SECRET) == PHP_SAMPLE_DIGEST


@pytest.mark.parametrize("signature", BOTH, ids=["connector", "fake"])
def test_nested_samples_sign_their_nested_fields_in_both_readings(
        signature: Callable[[dict[str, Any], str], str]) -> None:
    """The PHP sample's `$StringForSignature` slip would drop `extra.otp5647`; the intent
    (NOTES.md section 1) keeps it, wherever `signature` sits among the fields."""
    ci = as_json(CI_C2B_REQUEST)
    assert signature(ci, SECRET) == CI_REQUEST_DIGEST
    assert signature({k: v for k, v in ci.items() if k != "extra"}, SECRET) != CI_REQUEST_DIGEST
    assert signature(as_json(C2B_STATUS_REQUEST_WITH_OTP), SECRET) == STATUS_WITH_OTP_DIGEST


@pytest.mark.parametrize("sample", [C2B_REQUEST, B2C_REQUEST, STATUS_REQUEST, CALLBACK,
                                    NG_B2C_REQUEST, C2B_STATUS_REQUEST_WITH_OTP, CI_C2B_REQUEST])
def test_the_documents_placeholder_signatures_verify_in_neither_reading(sample: str) -> None:
    body = as_json(sample)
    assert not verify(body, SECRET)
    assert not fake_reading.signature_ok(body, SECRET)
    assert verify(fake_reading.with_signature(body, SECRET), SECRET)
    assert fake_reading.signature_ok(signed(body, SECRET), SECRET)


def _reply(sample: str, make_payment: MakePayment, **payment: Any) -> Any:
    body = as_json(sample)
    return mapping.read_reply(body, make_payment(payment_id=body["order_id"], **payment),
                              submit=True)


def test_the_simulator_sample_is_in_progress(make_payment: MakePayment) -> None:
    update = _reply(SIMULATOR_RESPONSE, make_payment, channel="14")
    assert (update.status, update.provider_reference, update.provider_message) == (
        Status.PROCESSING, "12345", "Good")
    assert update.next_action is None


@pytest.mark.parametrize(("sample", "reference", "fulfilment"), [
    (C2B_RESPONSE, "732007046722", {"transaction_ref": "MP.33234.342.CP33"}),
    (B2C_RESPONSE, "532007056722", {}),
    (STATUS_RESPONSE, "732007046722", {"transaction_ref": "MP.33234.342.CP33"}),
])
def test_the_response_samples_are_successes(make_payment: MakePayment, sample: str,
                                            reference: str, fulfilment: dict[str, str]) -> None:
    update = _reply(sample, make_payment)
    assert update.status is Status.SUCCEEDED
    assert update.provider_reference == reference
    assert update.fulfilment == fulfilment
    assert update.raw["service_version"] == "11.1"  # a JSON number kept as its exact text


def test_the_nigerian_bank_details_sample_reaches_the_customer(make_payment: MakePayment) -> None:
    update = _reply(NG_C2B_BANK_DETAILS_RESPONSE, make_payment, channel="2311", currency="NGN",
                    phone="")
    assert update.status is Status.ACTION_REQUIRED
    assert update.next_action is not None
    assert update.next_action.kind is NextActionKind.BANK_TRANSFER
    assert update.next_action.details == {
        "account_number": "4000000000", "bank_name": "Premium Trust Bank",
        "account_name": "Test Ltd / Test Limited", "reference": "90900000001",
        "amount_minor": "10000"}


def _connector(merchant_id: str) -> GatewayConnector:
    return GatewayConnector(ProviderAccount(provider="gateway", name="main", settings={
        "base_url": "http://127.0.0.1:9", "public_id": "p", "merchant_id": merchant_id,
        "secret_key": SECRET}))


def _inbound(body: bytes) -> InboundCallback:
    return InboundCallback("gateway", "main", {}, body, {}, "", datetime.now(UTC))


async def test_the_callback_sample_read_by_the_connector() -> None:
    body = as_json(CALLBACK)
    connector = _connector(body["merchant_id"])
    try:
        with pytest.raises(CallbackRejected, match="signature"):
            connector.verify_callback(_inbound(as_bytes(body)))
        resigned = as_bytes(fake_reading.with_signature(body, SECRET))
        connector.verify_callback(_inbound(resigned))
        [event] = connector.parse_callback(_inbound(as_bytes(body)))
    finally:
        await connector.close()
    assert event.payment_id == "16280954971628095497"
    assert event.direction == Direction.COLLECTION  # operation_type 17
    assert event.update.status is Status.SUCCEEDED
    assert event.update.provider_reference == "1234567"
    assert event.update.fulfilment == {"transaction_ref": "QR555RQ"}
    # provider_id 14 is the simulator, read in KES like the document's simulator examples.
    assert event.update.amount == Money.of(10000, "KES")


def _fake_for(body: dict[str, Any]) -> GatewayFake:
    return GatewayFake(merchant_id=body["merchant_id"], secret_key=SECRET)


@pytest.mark.parametrize(("sample", "operation"), [
    (C2B_REQUEST, C2B), (B2C_REQUEST, B2C), (NG_B2C_REQUEST, B2C),
])
def test_the_payment_request_samples_pass_the_fakes_checks(sample: str, operation: int) -> None:
    body = as_json(sample)
    fake = _fake_for(body)
    with pytest.raises(Refused) as refused:
        fake.check_payment(as_bytes(body), operation)
    assert refused.value.http == 401  # the document's placeholder signature
    checked, rules = fake.check_payment(as_bytes(signed(body, SECRET)), operation)
    assert checked == {**body, "signature": checked["signature"]}
    assert rules.currency in ("", body["currency"])  # "": the simulator takes any currency


@pytest.mark.parametrize("sample", [STATUS_REQUEST, C2B_STATUS_REQUEST_WITH_OTP])
def test_the_status_request_samples_pass_the_fakes_checks(sample: str) -> None:
    body = as_json(sample)
    fake = _fake_for(body)
    checked = fake.check(as_bytes(signed(body, SECRET)), fake_reading.STATUS_FIELDS,
                         fake_reading.STATUS_REQUIRED)
    assert list(checked) == [*list(body)[:-1], "signature"]


def test_the_country_examples_contradict_the_field_table_and_the_fake_says_where() -> None:
    """Both examples send "amount": "1100" where the field table asks for two digits after
    the point, and the Burkina Faso one carries an Ivory Coast number: the fake names each."""
    ci = as_json(CI_C2B_REQUEST)
    fake = _fake_for(ci)
    with pytest.raises(Refused, match="amount"):
        fake.check_payment(as_bytes(signed(ci, SECRET)), C2B)
    fake.check_payment(as_bytes(signed({**ci, "amount": "1100.00"}, SECRET)), C2B)
    bf = {**as_json(BF_C2B_REQUEST), "amount": "1100.00"}
    with pytest.raises(Refused, match="customer_id"):
        fake.check_payment(as_bytes(signed(bf, SECRET)), C2B)
    bf_number = {**bf, "customer_id": "22670123456"}
    fake.check_payment(as_bytes(signed(bf_number, SECRET)), C2B)


def test_the_php_signing_sample_is_not_a_request_the_fake_takes() -> None:
    """Its `client_id` and numeric amount are not in the payment_c2b field table."""
    post = php_post_data()
    fake = GatewayFake(merchant_id=str(post["merchant_id"]), secret_key=SECRET)
    with pytest.raises(Refused, match="customer_id"):
        fake.check_payment(as_bytes(signed(post, SECRET)), C2B)


def test_the_connectors_requests_have_the_samples_shape(make_payment: MakePayment) -> None:
    sample = as_json(C2B_REQUEST)
    kenya = CATALOGUE.channel("2390")
    assert kenya is not None
    body = mapping.payment_request(make_payment(), kenya, merchant_id="m", callback_url="",
                                   send_country=True)
    assert [*body, "signature"] == list(sample)
    status = mapping.status_request("m", "o")
    assert [*status, "signature"] == list(as_json(STATUS_REQUEST))
