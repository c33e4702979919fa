"""Status by record, sweeps with the documented filters, and the shared rate limit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest

from malipo.app.connector import CallContext
from malipo.connectors.kwik import KwikConnector
from malipo.connectors.kwik.mapping import TransactionFilter
from malipo.domain.errors import ProviderNotFound, ProviderUnavailable
from malipo.domain.payments import Payment
from malipo.domain.status import Status
from malipo.sandbox.kwik import KwikFake

ConnectorFactory = Callable[..., KwikConnector]
PaymentFactory = Callable[..., Payment]


async def test_unknown_reference_is_not_found(
    connector: KwikConnector, make_payment: PaymentFactory,
) -> None:
    with pytest.raises(ProviderNotFound):
        await connector.fetch_status(make_payment(), CallContext())


async def test_record_times_are_converted_from_gmt_plus_2_to_utc(
    fake: KwikFake, connector: KwikConnector, make_payment: PaymentFactory,
) -> None:
    payment = make_payment("paid")
    await connector.create_payment(payment, CallContext())
    fake.advance(webhook=False)  # the collection run makes the transaction
    fake.transactions[payment.id]["status_changed_at"] = "2025-01-20 01:30:03"
    update = await connector.fetch_status(payment, CallContext())
    assert update.raw["times_utc"]["status_changed_at"] == "2025-01-19T23:30:03Z"  # type: ignore[index]
    assert update.provider_status == "Sent to Bank"
    assert update.status is Status.PROCESSING
    assert update.fulfilment["payment_reference"] == fake.transactions[payment.id][
        "payment_reference"]


async def test_sweep_sends_the_documented_filters_and_maps_every_row(
    fake: KwikFake, connector: KwikConnector, make_payment: PaymentFactory,
) -> None:
    payments = [make_payment(o) for o in ("paid", "unpaid", "pending")]
    await asyncio.gather(*(connector.create_payment(p, CallContext()) for p in payments))
    fake.run()
    today = datetime.now(UTC).astimezone().date()
    paid_id = connector.status_names.id_of("Paid")
    assert paid_id is not None
    swept = await connector.list_transactions(TransactionFilter(
        transaction_status_lookups_id=paid_id,
        charged_at_start_date=today - timedelta(days=1),
        charged_end_date=today + timedelta(days=1),
        payment_methods_id="pam_debit_order",
    ), CallContext())
    assert [(t.reference, t.update.status) for t in swept] == [(payments[0].id, Status.SUCCEEDED)]
    query = fake.calls_to("/transactions")[-1].query
    assert query == {
        "transaction_status_lookups_id": paid_id,
        "charged_at_start_date": (today - timedelta(days=1)).isoformat(),
        "charged_end_date": (today + timedelta(days=1)).isoformat(),
        "payment_methods_id": "pam_debit_order",
    }
    everything = await connector.list_transactions(TransactionFilter(
        status_changed_at_start_date=date(2000, 1, 1)), CallContext())
    assert {t.reference: t.update.status for t in everything} == {
        payments[0].id: Status.SUCCEEDED, payments[1].id: Status.FAILED,
        payments[2].id: Status.PROCESSING}


async def test_a_burst_stays_under_kwiks_limit(
    fake: KwikFake, connector: KwikConnector, make_payment: PaymentFactory,
) -> None:
    payment = make_payment("paid")
    await connector.create_payment(payment, CallContext())
    fake.advance(webhook=False)
    updates = await asyncio.gather(*(connector.fetch_status(payment, CallContext())
                                     for _ in range(150)))
    assert fake.rate_limited == 0
    assert len(updates) == 150
    assert all(u.status is Status.PROCESSING for u in updates)
    assert len(fake.calls_to(f"/record/{payment.id}")) == 150


async def test_without_a_client_limit_kwik_answers_429_as_unavailable(
    fake: KwikFake, make_connector: ConnectorFactory, make_payment: PaymentFactory,
) -> None:
    connector = make_connector(rate_limit_per_s="1000")
    payment = make_payment("paid")
    await connector.create_payment(payment, CallContext())
    fake.advance(webhook=False)  # one record call per status poll from here
    await asyncio.sleep(1.0)  # let Kwik's window forget the submission
    fake.rate_limit = 10
    results = await asyncio.gather(*(connector.fetch_status(payment, CallContext())
                                     for _ in range(30)), return_exceptions=True)
    assert fake.rate_limited == 20
    assert sum(isinstance(r, ProviderUnavailable) for r in results) == 20
    assert all("429" in str(r) for r in results if isinstance(r, ProviderUnavailable))


async def test_the_limit_is_shared_by_submissions_and_polls(
    fake: KwikFake, make_connector: ConnectorFactory, make_payment: PaymentFactory,
) -> None:
    fake.rate_limit = 10
    connector = make_connector(rate_limit_per_s="10", batch_max_size="1")
    payments = [make_payment("paid") for _ in range(8)]
    await asyncio.gather(*(connector.create_payment(p, CallContext()) for p in payments))
    await asyncio.gather(*(connector.fetch_status(p, CallContext())
                           for p in payments for _ in range(2)))
    assert fake.rate_limited == 0
    assert len(fake.calls_to("/payments/submit")) == 8
