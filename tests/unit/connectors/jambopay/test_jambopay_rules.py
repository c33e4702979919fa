"""JamboPay's callback parsing, catalogue data, validation and settings: pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from malipo.app.catalogue import check_payment
from malipo.app.connector import Connector, InboundCallback, ProviderAccount
from malipo.connectors.jambopay import JambopayConnector
from malipo.connectors.jambopay.callbacks import ACTIONS, parse, verify
from malipo.connectors.jambopay.signing import allowed_networks
from malipo.connectors.registry import build
from malipo.domain.errors import CallbackRejected, InvalidRequest
from malipo.domain.money import Money
from malipo.domain.payments import Customer, Payment
from malipo.domain.status import Direction, Method, Status
from tests.connectors.jambopay.jambopay_document_samples import (
    CALLBACK_ACTIONS,
    NOTES_CALLBACK,
)
from tests.connectors.jambopay.jambopay_document_samples import callback as sample_callback

ACCOUNT = ProviderAccount("jambopay", "a", {
    "base_url": "https://jp.example/JambopayServices/", "username": "u", "password": "p",
    "app_key": "k"})


def callback(body: bytes, remote: str = "127.0.0.1") -> InboundCallback:
    return InboundCallback("jambopay", "a", {"content-type": "application/json"}, body, {},
                           remote, datetime.now(UTC))


def doc_callback(status: str, action: str, amount: str = "20.0") -> bytes:
    return (f'{{"TransactionId": "1042955", "MeterNumber": "14234567890", '
            f'"PhoneNumber": "254712345678", "Amount": {amount}, "TransactionStatus": '
            f'"{status}", "ThirdPartyRef": "TP1", "Action": "{action}"}}').encode()


def test_actions_table_lists_the_documented_actions() -> None:
    assert set(ACTIONS) == {"Token Vending", "Agent Refunded"}


def test_token_vending_callback() -> None:
    [event] = parse(callback(doc_callback("completed", "Token Vending")), "KES")
    assert event.update.status is Status.SUCCEEDED
    assert event.update.provider_reference == "1042955"
    assert event.update.amount == Money.of(2000, "KES")
    assert event.update.fulfilment == {"third_party_reference": "TP1"}
    assert event.event_key == "1042955:token vending:completed"
    assert event.payment_id == ""  # JamboPay echoes no reference of ours


def test_agent_refunded_callback_claims_a_reversal() -> None:
    [event] = parse(callback(doc_callback("cancelled", "Agent Refunded")), "KES")
    assert event.update.status is Status.REVERSED
    assert event.update.failure_reason == "AGENT_REFUNDED"


def test_the_documented_callback_fields_parse() -> None:
    [event] = parse(callback(sample_callback("1042955")), "KES")
    assert event.update.status is Status.SUCCEEDED
    assert event.update.amount == Money.of(2000, "KES")
    assert event.update.provider_reference == "1042955"
    for action in CALLBACK_ACTIONS:
        assert action in ACTIONS
        assert action in NOTES_CALLBACK


def test_an_unknown_action_or_status_is_unknown_whatever_else_it_says() -> None:
    [queued] = parse(callback(doc_callback("completed", "Queued")), "KES")
    assert queued.update.status is Status.UNKNOWN
    assert queued.update.provider_message == "Queued"
    [odd] = parse(callback(doc_callback("Mystery", "")), "KES")
    assert odd.update.status is Status.UNKNOWN
    assert odd.update.provider_status == "Mystery"
    [checking] = parse(callback(doc_callback("Checking", "")), "KES")
    assert checking.update.status is Status.PROCESSING


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"Action": "Token Vending"}',
                                  doc_callback("completed", "Token Vending", "20.001")])
def test_malformed_callbacks_are_rejected(body: bytes) -> None:
    with pytest.raises(CallbackRejected):
        parse(callback(body), "KES")


def test_source_allow_list() -> None:
    verify(callback(b"", "8.8.8.8"), ())  # not configured: anyone
    verify(callback(b"", "10.1.2.3"), allowed_networks(("10.0.0.0/8",)))
    verify(callback(b"", "2001:db8::1"), allowed_networks(("10.0.0.0/8", "2001:db8::/32")))
    with pytest.raises(CallbackRejected):
        verify(callback(b"", "11.1.2.3"), allowed_networks(("10.0.0.0/8", "192.0.2.7")))
    with pytest.raises(CallbackRejected):
        verify(callback(b"", "unix-socket"), allowed_networks(("10.0.0.0/8",)))


def test_settings_defaults_and_required_keys() -> None:
    settings = JambopayConnector(ACCOUNT).settings
    assert settings.base_url == "https://jp.example/JambopayServices"
    assert settings.token_url == "https://jp.example/JambopayServices/token"
    assert (settings.grant_type, settings.app_key_header) == ("agency", "app_key")
    assert (settings.kplc_stream, settings.airtime_stream) == ("kplc", "credit")
    assert settings.presentment_ttl_s == 0
    with pytest.raises(KeyError):
        JambopayConnector(ProviderAccount("jambopay", "a", {"base_url": "https://x"}))


def payment(**overrides: object) -> Payment:
    now = datetime.now(UTC)
    fields: dict[str, object] = {
        "id": "po_1", "tenant": "t", "direction": Direction.PAYOUT, "provider": "jambopay",
        "account": "a", "method": Method.BILL_PAYMENT, "amount": Money.of(2000, "KES"),
        "idempotency_key": "k", "created_at": now, "updated_at": now, "channel": "kplc",
        "customer": Customer(phone_number="+254712345678"),
        "provider_fields": {"meter_number": "14234567890"}, **overrides}
    return Payment(**fields)  # type: ignore[arg-type]


def test_catalogue_is_data_and_checks_generic_rules() -> None:
    catalogue = JambopayConnector(ACCOUNT).catalogue()
    assert catalogue.currencies == ("KES",)
    assert {c.id for c in catalogue.channels} == {
        "kplc", "airtime_safaricom", "airtime_airtel", "airtime_telkom"}
    safaricom = catalogue.channel("airtime_safaricom")
    assert safaricom is not None
    assert safaricom.extra["operator_code"] == 4
    assert check_payment(payment(), catalogue) == []
    broken = check_payment(payment(amount=Money.of(50, "KES"), provider_fields={}), catalogue)
    assert {v.field for v in broken} == {"amount.amount_minor", "provider_fields.meter_number"}


@pytest.mark.parametrize(("overrides", "field"), [
    ({"direction": Direction.COLLECTION}, "direction"),
    ({"method": Method.AIRTIME}, "method"),
    ({"provider_fields": {"meter_number": "14-234"}}, "provider_fields.meter_number"),
    ({"provider_fields": {"meter_number": "1", "auto_commit": "yes"}},
     "provider_fields.auto_commit"),
])
def test_validate_provider_rules(overrides: dict[str, object], field: str) -> None:
    connector = JambopayConnector(ACCOUNT)
    connector.validate(payment())
    with pytest.raises(InvalidRequest) as caught:
        connector.validate(payment(**overrides))
    assert [v.field for v in caught.value.violations] == [field]


def test_registry_builds_a_connector_that_honours_the_port() -> None:
    connector = build(ACCOUNT)
    assert isinstance(connector, JambopayConnector)
    assert isinstance(connector, Connector)
    caps = connector.capabilities
    assert (caps.payouts, caps.collections, caps.callbacks_need_confirmation) == (
        True, False, True)
    assert not caps.status_by_our_reference
    assert not caps.idempotent_submit
