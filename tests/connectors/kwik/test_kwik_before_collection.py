"""Kwik makes a transaction only at the collection run: before it, a 404 on the record is
not "never submitted". The submission is found by our reference instead, so a resumed
submission is not sent twice, and the payment is not expected to settle before its action
date."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from malipo.app.connector import CallContext, SettlesNotBefore
from malipo.connectors.kwik import KwikConnector
from malipo.domain.errors import ProviderNotFound
from malipo.domain.payments import Payment
from malipo.domain.status import Status
from malipo.sandbox.kwik import KwikFake

ConnectorFactory = Callable[..., KwikConnector]
PaymentFactory = Callable[..., Payment]


async def test_a_submitted_payment_without_a_transaction_yet_is_found_by_our_reference(
    fake: KwikFake, make_connector: ConnectorFactory, make_payment: PaymentFactory,
) -> None:
    payment = make_payment("paid")
    await make_connector().create_payment(payment, CallContext())
    assert payment.id not in fake.transactions  # no collection run yet
    restarted = make_connector()  # a new process after a crash: nothing in memory
    update = await restarted.fetch_status(payment, CallContext())
    assert update.status is Status.PROCESSING
    assert update.provider_reference == fake.payments[payment.id]["id"]
    assert len(fake.batches) == 1


async def test_a_payment_never_submitted_is_not_found(
    fake: KwikFake, connector: KwikConnector, make_payment: PaymentFactory,
) -> None:
    payment = make_payment()
    with pytest.raises(ProviderNotFound):
        await connector.fetch_status(payment, CallContext())
    # Both places were asked: no transaction, and no submission either.
    assert [c.status for c in fake.calls if payment.id in c.path] == [404, 404]


async def test_after_the_collection_run_the_transaction_is_the_answer(
    fake: KwikFake, connector: KwikConnector, make_payment: PaymentFactory,
) -> None:
    payment = make_payment("paid")
    await connector.create_payment(payment, CallContext())
    fake.advance([payment.id], webhook=False)
    update = await connector.fetch_status(payment, CallContext())
    assert update.provider_status == "Sent to Bank"
    assert update.provider_reference == fake.payments[payment.id]["id"]


def test_a_debit_order_does_not_settle_before_the_end_of_its_action_date(
    connector: KwikConnector, make_payment: PaymentFactory,
) -> None:
    assert isinstance(connector, SettlesNotBefore)
    payment = make_payment(provider_fields={"action_date": "2030-01-15"})
    # The whole action date in South Africa (GMT+2): the run may come late that day.
    assert connector.settles_not_before(payment) == datetime(2030, 1, 15, 22, 0, tzinfo=UTC)


async def test_the_fake_serves_only_the_default_submission_path(
    fake: KwikFake, make_connector: ConnectorFactory, make_payment: PaymentFactory,
) -> None:
    """The documents name no such call: the assumption is a setting, and the fake knows
    only its default, so a different path shows up as "not found" here, not as agreement."""
    payment = make_payment("paid")
    await make_connector().create_payment(payment, CallContext())
    elsewhere = make_connector(payment_record_path="payments/{reference}")
    with pytest.raises(ProviderNotFound):
        await elsewhere.fetch_status(payment, CallContext())
