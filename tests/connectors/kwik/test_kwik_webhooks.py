"""Batched webhooks delivered over HTTP: one event per result, bad results skipped visibly."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from malipo.app.connector import CallbackOutcome, CallContext, InboundCallback
from malipo.connectors.kwik import KwikConnector
from malipo.domain.errors import CallbackRejected
from malipo.domain.money import Money
from malipo.domain.payments import Payment
from malipo.domain.status import Status
from malipo.sandbox.fake_provider import CallbackMode
from malipo.sandbox.kwik import KwikFake

# `receiver` is conftest's Receiver (journal, verify, parse, dedupe, answer).
ConnectorFactory = Callable[..., KwikConnector]
PaymentFactory = Callable[..., Payment]


def inbound(body: bytes, query: dict[str, str] | None = None,
            headers: dict[str, str] | None = None, remote: str = "127.0.0.1") -> InboundCallback:
    return InboundCallback("kwik", "main", headers or {}, body, query or {}, remote,
                           datetime.now(UTC))


async def test_each_bank_step_arrives_as_one_batched_webhook(
    fake: KwikFake, connector: KwikConnector, make_payment: PaymentFactory, receiver: Any,
) -> None:
    receiver.connector = connector
    fake.webhook_url = receiver.url
    payments = [make_payment(o) for o in ("paid", "unpaid", "reversed", "cancelled")]
    await asyncio.gather(*(connector.create_payment(p, CallContext()) for p in payments))
    fake.run()
    await asyncio.gather(*fake._tasks)
    # steps: 4 moved, then 3 (cancelled is done), then reversed alone twice
    assert [len(json.loads(d.body)["transactions"]) for d in fake.deliveries] == [4, 3, 1]
    assert all(d.status == 200 for d in fake.deliveries)
    final: dict[str, Status | None] = {}
    for event in receiver.events:
        final[event.payment_id] = event.update.status
        record = fake.transactions[event.payment_id]
        assert event.event_key.startswith(record["id"] + ":")
        assert event.update.amount == next(p.amount for p in payments if p.id == event.payment_id)
    assert final == {payments[0].id: Status.SUCCEEDED, payments[1].id: Status.FAILED,
                     payments[2].id: Status.REVERSED, payments[3].id: Status.CANCELLED}
    unpaid = [e for e in receiver.events if e.payment_id == payments[1].id][-1]
    assert unpaid.update.failure_message == "NOT PROVIDED FOR"
    assert connector.capabilities.callbacks_need_confirmation is True


async def test_fifty_results_with_one_malformed_keep_the_other_49(
    fake: KwikFake, connector: KwikConnector, make_payment: PaymentFactory, receiver: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.connector = connector
    fake.webhook_url = receiver.url
    payments = [make_payment("paid", minor=1000 + i) for i in range(50)]
    await asyncio.gather(*(connector.create_payment(p, CallContext()) for p in payments))
    records = fake.advance(webhook=False)
    assert len(records) == 50
    records[17] = {**records[17], "amount": "12.345"}  # not a ZAR amount
    with caplog.at_level(logging.WARNING, logger="malipo.connectors.kwik.callbacks"):
        deliveries = await fake.webhook(records)
    assert [d.status for d in deliveries] == [200]
    assert len(receiver.events) == 49
    assert payments[17].id not in {e.payment_id for e in receiver.events}
    skipped = receiver.events[0].raw["webhook"]["skipped"]  # type: ignore[index]
    assert skipped == [{"index": 17, "error": "amount: 12.345 has more than 2 decimals for ZAR"}]
    assert "result 17 skipped" in caplog.text
    assert len({e.event_key for e in receiver.events}) == 49


async def test_redelivered_webhook_is_a_duplicate(
    fake: KwikFake, connector: KwikConnector, make_payment: PaymentFactory, receiver: Any,
) -> None:
    receiver.connector = connector
    fake.webhook_url = receiver.url
    payment = make_payment("paid")
    await connector.create_payment(payment, CallContext())
    fake.chaos.next_callback, fake.chaos.callback_count = CallbackMode.TWICE, 1
    fake.advance()
    await asyncio.gather(*fake._tasks)
    assert receiver.outcomes == [CallbackOutcome.APPLIED, CallbackOutcome.DUPLICATE]
    assert len(receiver.events) == 1


async def test_with_a_shared_secret_forged_webhooks_are_refused(
    fake: KwikFake, make_connector: ConnectorFactory, make_payment: PaymentFactory,
    receiver: Any,
) -> None:
    connector = make_connector(webhook_secret="s3cret-url-token")
    assert connector.capabilities.callbacks_need_confirmation is False
    receiver.connector = connector
    fake.webhook_url = receiver.url + "?token=s3cret-url-token"
    payment = make_payment("paid")
    await connector.create_payment(payment, CallContext())
    fake.chaos.next_callback, fake.chaos.callback_count = CallbackMode.FORGED, 1
    fake.advance()  # Sent to Bank, delivered with a wrong token
    await asyncio.gather(*fake._tasks)
    assert [d.status for d in fake.deliveries] == [401, 401, 401]  # retried, never accepted
    fake.advance()
    await asyncio.gather(*fake._tasks)
    assert fake.deliveries[-1].status == 200
    assert receiver.outcomes == [CallbackOutcome.REJECTED] * 3 + [CallbackOutcome.APPLIED]
    assert [e.update.provider_status for e in receiver.events] == ["Paid"]


def test_header_secret_and_ip_allow_list(make_connector: ConnectorFactory) -> None:
    connector = make_connector(webhook_secret="abc", webhook_allowed_ips="10.0.0.5")
    body = b'{"id":"w1","type":"transaction.updated","status":true,"results":[]}'
    connector.verify_callback(inbound(body, headers={"x-kwik-webhook-secret": "abc"},
                                      remote="10.0.0.5"))
    with pytest.raises(CallbackRejected):
        connector.verify_callback(inbound(body, headers={"x-kwik-webhook-secret": "abc"}))
    with pytest.raises(CallbackRejected):
        connector.verify_callback(inbound(body, query={"token": "abd"}, remote="10.0.0.5"))


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"type":"transaction.updated"}',
                                  b'{"id":"w","results":{}}'])
def test_bodies_that_are_not_kwik_webhooks_are_refused(connector: KwikConnector,
                                                       body: bytes) -> None:
    with pytest.raises(CallbackRejected):
        connector.parse_callback(inbound(body))


def test_unresolved_status_id_leaves_the_status_to_a_poll_and_notes_shape_is_read(
    connector: KwikConnector,
) -> None:
    record = {"id": "tra_9", "transaction_reference": "pay_1", "payments_id": "pay_k",
              "amount": Decimal("1.5"), "transaction_status_lookups_id": "loo_never_seen",
              "created_at": None, "status_changed_at": "2025-01-20 01:30:03"}
    body = json.dumps({"id": 7, "type": "transaction.updated", "results": [record]},
                      default=str).encode()
    (event,) = connector.parse_callback(inbound(body))
    assert event.update.status is None  # the callback processor asks Kwik (fetch_status)
    assert event.update.provider_status == "loo_never_seen"
    assert event.update.amount == Money.of(150, "ZAR")
    assert event.event_key == "tra_9:loo_never_seen:2025-01-20 01:30:03"


def test_other_webhook_types_carry_no_transaction_events(connector: KwikConnector) -> None:
    body = b'{"id":"w2","type":"payment.updated","status":true,"results":[{"id":"pay_k"}]}'
    assert connector.parse_callback(inbound(body)) == []
