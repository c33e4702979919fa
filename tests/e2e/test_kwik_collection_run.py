# pyright: basic
"""Kwik end to end around the collection run: a transaction exists only once the bank run for
the action date has made it, so before that a record lookup answers 404. The service must not
read that as "never submitted" (no second submission after a crash), must not expire the
payment to FAILED before its action date, and must still resolve webhooks that arrive when
a fresh process has not yet learned Kwik's status names."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest

from malipo.app.connector import CallContext, ProviderAccount
from malipo.app.unit_of_work import Schedule
from malipo.config import AccountConfig, PolicyConfig
from malipo.connectors.kwik import KwikConnector
from malipo.domain.ids import new_payment_id
from malipo.domain.money import Money
from malipo.domain.payments import BankAccount, Customer, Payment
from malipo.domain.status import Direction, Method
from malipo.payments.v1 import money_pb2, payment_pb2, payment_service_pb2
from malipo.sandbox.kwik import ACCOUNT_FOR, KwikFake
from tests.harness import Running, auth, running, settings_for

pb = payment_service_pb2
API_KEY, API_SECRET, HOOK_SECRET = "kwik_run_key", "kwik_run_secret", "kwik-run-hook"
SETTINGS = {"api_key": API_KEY, "api_secret": API_SECRET, "payment_methods_id": "pam_debit_order",
            "batch_window_s": "0.05", "webhook_secret": HOOK_SECRET, "timeout_s": "5"}
# Polls come fast and the expiry rule is one second or three attempts: anything that could
# expire does so within the test.
QUICK = PolicyConfig(start_after_s=0.1, interval_s=0.1, backoff=1.0, max_interval_s=0.2,
                     max_attempts=3, expire_after_s=1.0, submit_grace_s=0.3,
                     submit_give_up_s=30.0)
SLOW = PolicyConfig(start_after_s=300.0, interval_s=300.0, submit_grace_s=300.0)


@pytest.fixture
async def fake() -> AsyncIterator[KwikFake]:
    provider = KwikFake(api_key=API_KEY, api_secret=API_SECRET)
    await provider.start()
    yield provider
    await provider.stop()


def service_for(database_url: str, fake: KwikFake, policy: PolicyConfig):
    account = AccountConfig(provider="kwik", name="default",
                            settings={**SETTINGS, "base_url": fake.api_url})
    return running(settings_for(database_url, accounts=[account], policies={"kwik": policy}))


def order(outcome: str, action_date: date) -> pb.CreatePaymentRequest:
    return pb.CreatePaymentRequest(
        idempotency_key=f"kwr-{uuid.uuid4()}", provider="kwik",
        method=payment_pb2.METHOD_DEBIT_ORDER, country="ZA",
        amount=money_pb2.Money(amount_minor=12345, currency="ZAR"),
        customer=payment_pb2.Customer(name="Thandi Nkosi", bank_account=payment_pb2.BankAccount(
            account_number=ACCOUNT_FOR[outcome], bank_code="051001")),
        provider_fields={"action_date": action_date.isoformat()})


async def get(service: Running, payment_id: str) -> payment_pb2.Payment:
    return (await service.stub.GetPayment(pb.GetPaymentRequest(payment_id=payment_id),
                                          metadata=auth())).payment


async def polled(fake: KwikFake, payment_id: str, times: int) -> None:
    async with asyncio.timeout(20):
        while len(fake.calls_to("/transactions/record/" + payment_id)) < times:
            await asyncio.sleep(0.05)


async def test_polls_before_the_action_date_never_expire_the_payment(
        database_url: str, fake: KwikFake) -> None:
    async with service_for(database_url, fake, QUICK) as service:
        later = (await service.stub.CreatePayment(
            order("paid", date.today() + timedelta(days=30)), metadata=auth())).payment
        overdue = (await service.stub.CreatePayment(
            order("paid", date(2020, 1, 1)), metadata=auth())).payment
        await polled(fake, later.id, 6)  # twice the attempts that expire a payment
        async with asyncio.timeout(20):  # the overdue one shows the rule is live
            while (await get(service, overdue.id)).status != payment_pb2.STATUS_FAILED:
                await asyncio.sleep(0.05)
        assert (await get(service, overdue.id)).failure_reason == "EXPIRED"
        got = await get(service, later.id)
        assert got.status == payment_pb2.STATUS_PROCESSING
        assert got.provider_reference == fake.payments[later.id]["id"]
        # The bank runs it on the action date; the reconciler then settles it.
        fake.run([later.id], webhook=False)
        async with asyncio.timeout(20):
            while (await get(service, later.id)).status != payment_pb2.STATUS_SUCCEEDED:
                await asyncio.sleep(0.05)


async def test_a_submission_interrupted_by_a_crash_is_found_not_sent_again(
        database_url: str, fake: KwikFake) -> None:
    # Before the crash: the batch reached Kwik, the answer never got recorded.
    now = datetime.now(UTC) - timedelta(seconds=5)
    payment = Payment(
        id=new_payment_id(), tenant="acme", direction=Direction.COLLECTION, provider="kwik",
        account="default", method=Method.DEBIT_ORDER, amount=Money.of(12345, "ZAR"),
        idempotency_key=f"kwr-{uuid.uuid4()}", created_at=now, updated_at=now, country="ZA",
        customer=Customer(name="Thandi Nkosi", bank_account=BankAccount(
            account_number=ACCOUNT_FOR["paid"], bank_code="051001")),
        provider_fields={"action_date": (date.today() + timedelta(days=3)).isoformat()})
    before = KwikConnector(ProviderAccount("kwik", "default",
                                           {**SETTINGS, "base_url": fake.api_url}))
    try:
        await before.create_payment(payment, CallContext())
    finally:
        await before.close()
    assert len(fake.batches) == 1
    async with service_for(database_url, fake, QUICK) as service:
        assert service.app.services is not None
        async with service.app.services.uow() as uow:
            await uow.payments.add(payment, actor="test", schedule=Schedule(now))
        async with asyncio.timeout(20):
            while (await get(service, payment.id)).status == payment_pb2.STATUS_PENDING:
                await asyncio.sleep(0.05)
        got = await get(service, payment.id)
        assert got.status == payment_pb2.STATUS_PROCESSING
        assert got.provider_reference == fake.payments[payment.id]["id"]
        assert len(fake.batches) == 1  # not submitted a second time


async def test_a_webhook_after_a_restart_resolves_status_names_it_has_not_seen_yet(
        database_url: str, fake: KwikFake) -> None:
    async with service_for(database_url, fake, SLOW) as first:
        created = (await first.stub.CreatePayment(order("paid", date.today()),
                                                  metadata=auth())).payment
        assert created.status == payment_pb2.STATUS_PROCESSING
    async with service_for(database_url, fake, SLOW) as service:  # a new process
        fake.webhook_url = (f"{service.callback_base}/callbacks/kwik/default"
                            f"?token={HOOK_SECRET}")
        while fake.advance([created.id]):
            while fake._tasks:
                await asyncio.gather(*list(fake._tasks))
        assert [d.status for d in fake.deliveries] == [200, 200]
        got = await get(service, created.id)
        assert got.status == payment_pb2.STATUS_SUCCEEDED
        assert got.provider_status == "Paid"
