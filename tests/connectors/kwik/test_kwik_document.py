"""The document's own sample bodies, fed to the connector and to the fake's checks.

Both readings of kwik-transactions.txt are tested against the document directly: the
connector must read what the document shows, and the fake must accept exactly that shape
(and its own records must have it too)."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import aiohttp
import pytest

from malipo.app.connector import CallContext, InboundCallback
from malipo.connectors.exact_json import loads
from malipo.connectors.kwik import KwikConnector
from malipo.connectors.kwik.mapping import TransactionFilter
from malipo.domain.money import Money
from malipo.domain.payments import Payment
from malipo.domain.status import Status
from malipo.sandbox.kwik import KwikFake, dump, record_problems
from tests.connectors.kwik.kwik_document_samples import (
    LIST_ANSWER,
    LIST_QUERY_EXAMPLES,
    RECORD_ANSWER,
    RECORD_REFERENCE,
    SUBMISSION_DATA_DEBICHECK,
    WEBHOOK_BODY,
    filled,
)

ConnectorFactory = Callable[..., KwikConnector]
PaymentFactory = Callable[..., Payment]
PINNED = json.dumps({"loo_abc123...": "Paid"})


def inbound(body: bytes, query: dict[str, str] | None = None) -> InboundCallback:
    return InboundCallback("kwik", "main", {}, body, query or {}, "127.0.0.1",
                           datetime.now(UTC))


def test_the_documents_webhook_body_is_one_event_per_transaction(
    make_connector: ConnectorFactory,
) -> None:
    connector = make_connector(status_lookups=PINNED)
    (event,) = connector.parse_callback(inbound(filled(WEBHOOK_BODY).encode()))
    assert event.payment_id == RECORD_REFERENCE
    assert event.update.status is Status.SUCCEEDED
    assert event.update.provider_status == "Paid"
    assert event.update.amount == Money.of(50025, "ZAR")
    assert event.update.provider_reference == "pay_abc123..."
    assert event.event_key  # deduplicated without a webhook id the document does not send
    assert event.update.raw["times_utc"]["charged_at"] == "2024-02-03T06:14:35Z"  # type: ignore[index]


def test_the_documents_webhook_with_debicheck_history_is_read_too(
    make_connector: ConnectorFactory,
) -> None:
    connector = make_connector(status_lookups=PINNED)
    body = filled(WEBHOOK_BODY, submission_data=SUBMISSION_DATA_DEBICHECK).encode()
    (event,) = connector.parse_callback(inbound(body))
    assert event.update.raw["submission_data"][0]["status"] == "PAID"  # type: ignore[index]


def test_the_same_webhook_delivered_twice_has_the_same_event_key(
    make_connector: ConnectorFactory,
) -> None:
    connector = make_connector(status_lookups=PINNED)
    body = filled(WEBHOOK_BODY).encode()
    first = connector.parse_callback(inbound(body))
    again = connector.parse_callback(inbound(body))
    assert [e.event_key for e in first] == [e.event_key for e in again]


@pytest.mark.parametrize("sample", [LIST_ANSWER, RECORD_ANSWER, WEBHOOK_BODY])
def test_the_fake_accepts_the_documents_records(sample: str) -> None:
    body = loads(filled(sample))
    records = body.get("transactions") or [body["transaction"]]
    assert [record_problems(r) for r in records] == [[]]


def test_the_fakes_checks_refuse_what_the_document_does_not_show() -> None:
    record = loads(filled(RECORD_ANSWER))["transaction"]
    assert record_problems({**record, "amount": "500.25"}) == ["amount is not a decimal number"]
    assert record_problems({**record, "status": "Paid"}) == ["undocumented field status"]
    no_ref = {k: v for k, v in record.items() if k != "transaction_reference"}
    assert record_problems(no_ref) == ["missing field transaction_reference"]
    assert record_problems({**record, "created_at": "2024-12-28T22:14:47Z"}) == [
        "created_at is not YYYY-MM-DD HH:mm:ss"]


async def test_the_fakes_own_records_and_webhooks_have_the_documents_shape(
    fake: KwikFake, connector: KwikConnector, make_payment: PaymentFactory,
) -> None:
    payment = make_payment("unpaid")
    await connector.create_payment(payment, CallContext())
    (record,) = fake.advance(webhook=False)
    assert record_problems(loads(dump(record))) == []
    body = loads(fake.webhook_body([record]))
    assert list(body) == list(loads(filled(WEBHOOK_BODY)))
    assert set(body["transactions"][0]) == set(loads(filled(WEBHOOK_BODY))["transactions"][0])


async def test_the_documents_record_answer_through_the_fake_to_fetch_status(
    fake: KwikFake, make_connector: ConnectorFactory, make_payment: PaymentFactory,
) -> None:
    connector = make_connector(status_lookups=PINNED)
    record = loads(filled(RECORD_ANSWER))["transaction"]
    fake.transactions[RECORD_REFERENCE] = record
    update = await connector.fetch_status(make_payment(id=RECORD_REFERENCE), CallContext())
    assert (update.status, update.amount) == (Status.SUCCEEDED, Money.of(50025, "ZAR"))
    assert update.fulfilment["payment_reference"] == "FAHE03053406"
    assert update.fulfilment["submission_batch_reference"] == "ABBO61857139"


async def test_the_documents_list_answer_and_query_examples_through_the_fake(
    fake: KwikFake, make_connector: ConnectorFactory,
) -> None:
    connector = make_connector(status_lookups=PINNED)
    fake.transactions[RECORD_REFERENCE] = loads(filled(LIST_ANSWER))["transactions"][0]
    everything = await connector.list_transactions(TransactionFilter(), CallContext())
    assert [(t.reference, t.update.status) for t in everything] == [
        (RECORD_REFERENCE, Status.SUCCEEDED)]
    async with aiohttp.ClientSession() as http:
        auth = {"Authorization": "Basic " + base64.b64encode(
            f"{fake.api_key}:{fake.api_secret}".encode()).decode()}
        async with http.get(fake.api_url + "transactions", params=LIST_QUERY_EXAMPLES,
                            headers=auth) as resp:
            assert resp.status == 200
            assert (await resp.json())["transactions"] == []  # the examples match nothing here
        async with http.get(fake.api_url + "transactions", params={"reference": "INV0045"},
                            headers=auth) as resp:
            assert resp.status == 400  # not a documented filter


def test_an_unknown_status_name_is_unknown_and_logged_once(
    make_connector: ConnectorFactory, caplog: pytest.LogCaptureFixture,
) -> None:
    name = f"Awaiting Mandate {uuid.uuid4().hex[:6]}"  # logged once per process: a fresh one
    connector = make_connector(status_lookups=json.dumps({"loo_abc123...": name}))
    body = filled(WEBHOOK_BODY).encode()
    with caplog.at_level(logging.WARNING, logger="malipo.connectors.kwik"):
        updates = [connector.parse_callback(inbound(body))[0].update for _ in range(3)]
    assert {u.status for u in updates} == {Status.UNKNOWN}
    assert {u.provider_status for u in updates} == {name}
    assert caplog.text.count(name) == 1
