"""Batched submission: one POST for many payments, each with its own answer and status."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from malipo.app.connector import CallContext
from malipo.connectors.kwik import KwikConnector
from malipo.domain.errors import (
    InvalidRequest,
    ProviderOutcomeUnknown,
    ProviderRejectedRequest,
    ProviderUnavailable,
)
from malipo.domain.money import Money
from malipo.domain.payments import Payment, apply_update
from malipo.domain.status import Status
from malipo.sandbox.kwik import KwikFake

ConnectorFactory = Callable[..., KwikConnector]
PaymentFactory = Callable[..., Payment]

FINAL = {
    "paid": (Status.SUCCEEDED, "Paid"),
    "unpaid": (Status.FAILED, "Unpaid"),
    "rejected": (Status.FAILED, "Rejected by Bank"),
    "cancelled": (Status.CANCELLED, "Cancelled"),
    "accepted": (Status.PROCESSING, "Accepted by bank"),
    "sent_to_bank": (Status.PROCESSING, "Sent to Bank"),
    "pending": (Status.PROCESSING, "Pending"),
}


async def test_mixed_batch_is_one_submission_and_each_payment_reaches_its_own_status(
    fake: KwikFake, connector: KwikConnector, make_payment: PaymentFactory,
) -> None:
    payments = [make_payment(outcome, minor=10000 + i) for i, outcome in enumerate(FINAL)]
    ctxs = [CallContext() for _ in payments]
    updates = await asyncio.gather(*(connector.create_payment(p, c)
                                     for p, c in zip(payments, ctxs, strict=True)))

    submits = fake.calls_to("/payments/submit")
    assert len(submits) == 1
    sent = json.loads(submits[0].body)
    assert [p["transaction_reference"] for p in sent["payments"]] == [p.id for p in payments]
    assert sent["payments"][0]["amount"] == "100.00"
    assert sent["batch_reference"].startswith("MLP")
    for payment, update, ctx in zip(payments, updates, ctxs, strict=True):
        assert update.status is Status.PROCESSING
        assert update.amount == payment.amount
        assert update.provider_reference == fake.payments[payment.id]["id"]
        assert [e.operation for e in ctx.exchanges][:1] == ["kwik.submit"]

    fake.run()
    for payment, (status, name) in zip(payments, FINAL.values(), strict=True):
        stored = apply_update(payment, updates[payments.index(payment)], payment.updated_at).after
        update = await connector.fetch_status(stored, CallContext())
        assert (update.status, update.provider_status) == (status, name), payment.id
        assert apply_update(stored, update, stored.updated_at).after.status in (status,)


async def test_unpaid_carries_the_bank_reason(
    fake: KwikFake, connector: KwikConnector, make_payment: PaymentFactory,
) -> None:
    payment = make_payment("unpaid")
    await connector.create_payment(payment, CallContext())
    fake.run()
    update = await connector.fetch_status(payment, CallContext())
    assert update.status is Status.FAILED
    assert update.failure_reason == "UNPAID"
    assert update.failure_message == "NOT PROVIDED FOR"
    history: Any = update.raw["submission_data"]
    assert [s["message"] for s in history] == ["SENT TO BANK", "UNPAID"]


async def test_reversal_after_paid(
    fake: KwikFake, connector: KwikConnector, make_payment: PaymentFactory,
) -> None:
    payment = make_payment("reversed")
    first = await connector.create_payment(payment, CallContext())
    current = apply_update(payment, first, payment.updated_at).after
    seen: list[Status] = []
    while fake.advance([payment.id], webhook=False):
        update = await connector.fetch_status(current, CallContext())
        change = apply_update(current, update, current.updated_at)
        current = change.after
        seen.append(current.status)
    assert seen == [Status.PROCESSING, Status.SUCCEEDED, Status.REVERSED]
    assert current.failure_reason == "REVERSED"


async def test_concurrent_retries_of_one_payment_are_sent_once(
    fake: KwikFake, connector: KwikConnector, make_payment: PaymentFactory,
) -> None:
    payment = make_payment("paid")
    other = make_payment("unpaid")
    answers = await asyncio.gather(*(connector.create_payment(payment, CallContext())
                                     for _ in range(5)),
                                   connector.create_payment(other, CallContext()))
    assert len({a.provider_reference for a in answers[:5]}) == 1
    assert len(fake.calls_to("/payments/submit")) == 1
    refs = [p["transaction_reference"] for p in fake.batches[0]["payments"]]
    assert sorted(refs) == sorted([payment.id, other.id])

    again = await connector.create_payment(payment, CallContext())  # after the batch returned
    assert again == answers[0]
    assert len(fake.calls_to("/payments/submit")) == 1


async def test_max_size_splits_batches(
    fake: KwikFake, make_connector: ConnectorFactory, make_payment: PaymentFactory,
) -> None:
    connector = make_connector(batch_max_size="3", batch_window_s="5")
    payments = [make_payment("paid", minor=100 + i) for i in range(7)]
    started = asyncio.get_running_loop().time()
    tasks = [asyncio.create_task(connector.create_payment(p, CallContext())) for p in payments]
    done, _ = await asyncio.wait(tasks[:6], timeout=2)
    assert len(done) == 6  # two full batches left without waiting for the 5 s window
    assert asyncio.get_running_loop().time() - started < 2
    assert [len(b["payments"]) for b in fake.batches] == [3, 3]
    await connector.batcher.close()  # the 7th was never sent: nothing sent, safe to retry
    with pytest.raises(ProviderUnavailable):
        await tasks[6]


async def test_one_refused_payment_does_not_sink_the_batch(
    fake: KwikFake, connector: KwikConnector, make_payment: PaymentFactory,
) -> None:
    good = make_payment("paid")
    bad = make_payment("paid", provider_fields={"payment_methods_id": "pam_unknown"})
    results = await asyncio.gather(connector.create_payment(good, CallContext()),
                                   connector.create_payment(bad, CallContext()),
                                   return_exceptions=True)
    assert results[0].status is Status.PROCESSING  # type: ignore[union-attr]
    assert isinstance(results[1], ProviderRejectedRequest)
    assert "payment_methods_id is not one of" in str(results[1])
    assert len(fake.batches) == 1


async def test_wrong_credentials_refuse_the_whole_batch(
    fake: KwikFake, make_connector: ConnectorFactory, make_payment: PaymentFactory,
) -> None:
    connector = make_connector(api_secret="wrong")
    results = await asyncio.gather(*(connector.create_payment(make_payment(), CallContext())
                                     for _ in range(2)), return_exceptions=True)
    assert all(isinstance(r, ProviderRejectedRequest) for r in results)
    assert "wrong" not in " ".join(str(r) for r in results)
    assert fake.unauthorized == 1
    assert fake.calls_to("/payments/submit")[0].headers["authorization"].startswith("Basic ")


async def test_server_error_after_processing_makes_every_member_unknown_and_not_resent(
    fake: KwikFake, connector: KwikConnector, make_payment: PaymentFactory,
) -> None:
    fake.chaos.next_response = fake.chaos.next_response.ERROR_500_AFTER
    fake.chaos.response_count = 1
    payments = [make_payment("paid"), make_payment("unpaid")]
    results = await asyncio.gather(*(connector.create_payment(p, CallContext())
                                     for p in payments), return_exceptions=True)
    assert all(isinstance(r, ProviderOutcomeUnknown) for r in results)
    assert set(fake.payments) == {p.id for p in payments}  # Kwik did take them
    with pytest.raises(ProviderOutcomeUnknown):
        await connector.create_payment(payments[0], CallContext())
    assert len(fake.calls_to("/payments/submit")) == 1
    update = await connector.fetch_status(payments[0], CallContext())  # the reconciler's way
    assert update.status is Status.PROCESSING


async def test_validate_names_each_broken_rule(
    connector: KwikConnector, make_payment: PaymentFactory,
) -> None:
    payment = make_payment(provider_fields={"action_date": "01/03/2025"})
    with pytest.raises(InvalidRequest) as caught:
        connector.validate(payment)
    assert [v.field for v in caught.value.violations] == ["provider_fields.action_date"]
    connector.validate(make_payment())
    ids_only = make_payment(provider_fields={"customer_id": "cus_1", "bank_account_id": "ban_1"})
    connector.validate(ids_only)


async def test_ids_instead_of_objects_are_sent_as_ids(
    fake: KwikFake, connector: KwikConnector, make_payment: PaymentFactory,
) -> None:
    payment = make_payment(provider_fields={"customer_id": "cus_1", "bank_account_id": "ban_1"})
    await connector.create_payment(payment, CallContext())
    item = fake.batches[0]["payments"][0]
    assert item["customer_id"] == "cus_1"
    assert item["bank_account_id"] == "ban_1"
    assert "customer" not in item
    assert "bank_account" not in item
    assert Money.from_decimal(item["amount"], "ZAR") == payment.amount
