"""Standard Webhooks signatures, the webhook payload's form and the delivery backoff."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest

from malipo.domain.events import StatusEvent
from malipo.domain.money import Money
from malipo.domain.status import Direction, Status
from malipo.webhooks.delivery import DeliveryPolicy, message_id, payload
from malipo.webhooks.signing import WebhookSigner, new_secret, parse_secret
from tests.webhook_receiver import verify


def test_signature_matches_the_standard_webhooks_published_example() -> None:
    # The example in the Standard Webhooks specification (and its reference libraries' tests).
    signer = WebhookSigner("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    got = signer.signature("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                           b'{"test": 2432232314}')
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_headers_carry_id_timestamp_and_a_signature_over_exactly_that_body() -> None:
    signer = WebhookSigner(new_secret())
    headers = signer.headers("whe_1_7", 1700000000, b'{"a":1}')
    assert headers["webhook-id"] == "whe_1_7"
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["webhook-signature"] == signer.signature("whe_1_7", 1700000000, b'{"a":1}')
    assert headers["webhook-signature"] != signer.signature("whe_1_7", 1700000000, b'{"a":2}')
    assert headers["webhook-signature"] != signer.signature("whe_1_8", 1700000000, b'{"a":1}')


def test_new_secrets_are_whsec_base64_of_32_random_bytes_and_never_shown() -> None:
    first, second = new_secret(), new_secret()
    assert first != second
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first[6:], validate=True)) == 32
    assert first[6:] not in repr(WebhookSigner(first))


@pytest.mark.parametrize("bad", ["", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!",
                                 "whsec_" + base64.b64encode(b"short").decode()])
def test_malformed_secrets_are_refused_without_echoing_them(bad: str) -> None:
    with pytest.raises(ValueError, match="webhook secret") as caught:
        parse_secret(bad)
    assert not bad or bad not in str(caught.value)


def _event() -> StatusEvent:
    return StatusEvent(
        sequence=42, event_id="0b7f6c4e-5f38-4a43-9f4e-0d3cb2f0a001", tenant="acme",
        payment_id="pay_01J", direction=Direction.COLLECTION, provider="simulator",
        account="default", old_status=Status.PROCESSING, new_status=Status.SUCCEEDED,
        provider_status="PAID", provider_reference="SIM123", amount=Money.of(150000, "KES"),
        reason="", message="", fulfilment={}, needs_review=False,
        occurred_at=datetime(2026, 12, 6, 20, 0, tzinfo=UTC),
        provider_payload={"phone": "***678", "amount": "1500.00"})


def test_payload_is_the_event_in_minor_units_and_the_same_bytes_on_every_attempt() -> None:
    body = payload(_event())
    assert body == payload(_event())
    doc = json.loads(body)
    assert doc["type"] == "payment.status_changed"
    assert doc["timestamp"] == "2026-12-06T20:00:00+00:00"
    data = doc["data"]
    assert (data["sequence"], data["payment_id"], data["old_status"], data["new_status"]) == (
        42, "pay_01J", "PROCESSING", "SUCCEEDED")
    assert (data["amount_minor"], data["currency"]) == (150000, "KES")
    assert data["provider_payload"] == {"phone": "***678", "amount": "1500.00"}
    assert message_id("whe_X", 42) == "whe_X_42"


def test_backoff_doubles_with_jitter_and_stops_growing_at_the_cap() -> None:
    policy = DeliveryPolicy(backoff_first_s=5.0, backoff_max_s=3600.0)
    assert [policy.backoff(n, rand=lambda: 0.9999999) for n in (1, 2, 3)] == pytest.approx(
        [5.0, 10.0, 20.0])
    assert [policy.backoff(n, rand=lambda: 0.0) for n in (1, 2, 3)] == [2.5, 5.0, 10.0]
    assert policy.backoff(20, rand=lambda: 0.0) == 1800.0
    assert policy.backoff(10_000, rand=lambda: 0.9999999) == pytest.approx(3600.0)


def test_the_tests_independent_verifier_accepts_our_signature_and_nothing_else() -> None:
    secret, body, now = new_secret(), b'{"data":{"sequence":1}}', int(time.time())
    headers = WebhookSigner(secret).headers("whe_1_1", now, body)
    assert verify(secret, headers, body)
    assert not verify(secret, headers, body.replace(b"1", b"2"))
    assert not verify(new_secret(), headers, body)
    assert not verify(secret, {**headers, "webhook-id": "whe_1_2"}, body)
    stale = WebhookSigner(secret).headers("whe_1_1", now - 600, body)
    assert not verify(secret, stale, body)


def test_a_lease_too_short_for_one_post_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="webhook_lease_s"):
        DeliveryPolicy(timeout_s=10.0, lease_s=10.5)
    assert DeliveryPolicy(timeout_s=2.0, lease_s=6.0).lease_s == 6.0
