# pyright: basic
"""Kwik end to end: debit orders batched by the real service, tracked by batched webhooks.

The account has a webhook secret (in the callback URL's query, as Kwik's webhooks carry no
signature), so the listener applies each webhook result on its own once the secret matches.
The fake's bank is advanced one step at a time and each step's webhook is awaited, as Kwik
sends them: one batched delivery per change of state."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from malipo.config import AccountConfig, PolicyConfig
from malipo.payments.v1 import money_pb2, payment_pb2, payment_service_pb2
from malipo.sandbox.kwik import ACCOUNT_FOR, KwikFake
from tests.harness import Running, auth, running, settings_for

pb = payment_service_pb2
API_KEY, API_SECRET = "kwik_e2e_key", "kwik_e2e_secret"
HOOK_SECRET = "kwik-e2e-hook-secret"
RATE = 30  # Kwik's is 100/s; lower here so a burst of a few dozen calls tests it quickly


@pytest.fixture(scope="module")
async def fake() -> AsyncIterator[KwikFake]:
    provider = KwikFake(api_key=API_KEY, api_secret=API_SECRET, rate_limit=RATE)
    await provider.start()
    yield provider
    await provider.stop()


@pytest.fixture(scope="module")
async def malipo(database_url: str, fake: KwikFake) -> AsyncIterator[Running]:
    account = AccountConfig(provider="kwik", name="default", settings={
        "base_url": fake.api_url, "api_key": API_KEY, "api_secret": API_SECRET,
        "payment_methods_id": "pam_debit_order", "batch_window_s": "0.4",
        "batch_max_size": "100", "rate_limit_per_s": str(RATE), "webhook_secret": HOOK_SECRET,
        "timeout_s": "10"})
    # Webhooks drive these tests: the reconciler's first poll comes after the module is done,
    # so what a test sees applied came from a webhook (or from RefreshPayment).
    policy = PolicyConfig(start_after_s=120.0, interval_s=1.0, backoff=1.0, max_interval_s=2.0,
                          submit_grace_s=120.0, submit_give_up_s=300.0)
    async with running(settings_for(database_url, accounts=[account],
                                    policies={"kwik": policy})) as service:
        fake.webhook_url = (f"{service.callback_base}/callbacks/kwik/default"
                            f"?token={HOOK_SECRET}")
        yield service


def pool(service: Running) -> asyncpg.Pool:
    assert service.app.pool is not None
    return service.app.pool


def order(outcome: str, *, key: str | None = None, amount: int = 15075,
          name: str = "Thandi Nkosi") -> pb.CreatePaymentRequest:
    return pb.CreatePaymentRequest(
        idempotency_key=key or f"kw-{uuid.uuid4()}", provider="kwik",
        method=payment_pb2.METHOD_DEBIT_ORDER, country="ZA",
        amount=money_pb2.Money(amount_minor=amount, currency="ZAR"),
        customer=payment_pb2.Customer(name=name, bank_account=payment_pb2.BankAccount(
            account_number=ACCOUNT_FOR[outcome], bank_code="051001")),
        provider_fields={"action_date": "2026-12-01"})


async def create_all(service: Running,
                     requests: list[pb.CreatePaymentRequest]) -> list[payment_pb2.Payment]:
    answers = await asyncio.gather(*(service.stub.CreatePayment(r, metadata=auth())
                                     for r in requests))
    return [a.payment for a in answers]


async def settled(fake: KwikFake) -> None:
    while fake._tasks:
        await asyncio.gather(*list(fake._tasks))


async def step_until_settled(fake: KwikFake, refs: list[str]) -> int:
    """One bank step at a time, each step's batched webhook delivered before the next."""
    steps = 0
    while fake.advance(refs):
        steps += 1
        await settled(fake)
    return steps


async def get(service: Running, payment_id: str) -> payment_pb2.Payment:
    return (await service.stub.GetPayment(pb.GetPaymentRequest(payment_id=payment_id),
                                          metadata=auth())).payment


async def moves(service: Running, payment_id: str) -> list[tuple[str, str]]:
    rows = await pool(service).fetch(
        "SELECT o, n FROM (SELECT payload->>'old_status' AS o, payload->>'new_status' AS n, "
        "id AS k FROM outbox WHERE payload->>'payment_id' = $1 UNION ALL "
        "SELECT old_status, new_status, sequence FROM events WHERE payment_id = $1) e "
        "ORDER BY k", payment_id)
    return [(r["o"], r["n"]) for r in rows]


async def test_mixed_batch_is_submitted_once_and_each_reaches_its_own_status(
        malipo: Running, fake: KwikFake) -> None:
    outcomes = ["paid", "unpaid", "rejected", "cancelled", "reversed"]
    batches = len(fake.batches)
    created = await create_all(malipo, [order(o) for o in outcomes])
    assert all(p.status == payment_pb2.STATUS_PROCESSING for p in created)
    assert len(fake.batches) == batches + 1
    batch = fake.batches[-1]
    # Each payment keeps its own reference (our id) inside the one submission.
    assert sorted(i["transaction_reference"] for i in batch["payments"]) == sorted(
        p.id for p in created)
    assert {i["amount"] for i in batch["payments"]} == {"150.75"}
    assert len(fake.calls_to("/payments/submit")) == len(fake.batches)

    await step_until_settled(fake, [p.id for p in created])
    final = {o: await get(malipo, p.id) for o, p in zip(outcomes, created, strict=True)}
    assert {o: p.status for o, p in final.items()} == {
        "paid": payment_pb2.STATUS_SUCCEEDED, "unpaid": payment_pb2.STATUS_FAILED,
        "rejected": payment_pb2.STATUS_FAILED, "cancelled": payment_pb2.STATUS_CANCELLED,
        "reversed": payment_pb2.STATUS_REVERSED}
    assert final["rejected"].failure_reason == "REJECTED_BY_BANK"
    assert final["unpaid"].failure_reason == "UNPAID"
    assert final["cancelled"].failure_reason == "CANCELLED"
    assert final["rejected"].failure_message == "NO SUCH ACCOUNT"
    for p in created:
        assert (await get(malipo, p.id)).provider_reference == \
            fake.transactions[p.id]["payments_id"]


async def test_retry_of_the_same_keys_submits_nothing_again(
        malipo: Running, fake: KwikFake) -> None:
    requests = [order("paid"), order("unpaid"), order("pending")]
    first = await create_all(malipo, requests)
    batches, submits = len(fake.batches), len(fake.calls_to("/payments/submit"))
    again = await create_all(malipo, requests)
    assert [p.id for p in again] == [p.id for p in first]
    assert len(fake.batches) == batches
    assert len(fake.calls_to("/payments/submit")) == submits
    rows = await pool(malipo).fetchval(
        "SELECT count(*) FROM payments WHERE idempotency_key = ANY($1::text[])",
        [r.idempotency_key for r in requests])
    assert rows == 3


async def test_unpaid_fails_with_the_banks_reason(malipo: Running, fake: KwikFake) -> None:
    (p,) = await create_all(malipo, [order("unpaid")])
    assert await step_until_settled(fake, [p.id]) == 2
    got = await get(malipo, p.id)
    assert got.status == payment_pb2.STATUS_FAILED
    assert got.failure_reason == "UNPAID"
    assert got.failure_message == "NOT PROVIDED FOR"
    assert got.provider_status == "Unpaid"
    assert await moves(malipo, p.id) == [
        ("", "PENDING"), ("PENDING", "PROCESSING"), ("PROCESSING", "FAILED")]


async def test_reversal_after_paid(malipo: Running, fake: KwikFake) -> None:
    (p,) = await create_all(malipo, [order("reversed")])
    fake.advance([p.id])  # Sent to Bank
    fake.advance([p.id])  # Paid
    await settled(fake)
    paid = await get(malipo, p.id)
    assert paid.status == payment_pb2.STATUS_SUCCEEDED
    fake.advance([p.id])  # Reversed
    await settled(fake)
    got = await get(malipo, p.id)
    assert got.status == payment_pb2.STATUS_REVERSED
    assert got.failure_reason == "REVERSED"
    assert (await moves(malipo, p.id))[-2:] == [
        ("PROCESSING", "SUCCEEDED"), ("SUCCEEDED", "REVERSED")]


async def test_webhook_with_fifty_results_and_one_malformed_applies_the_others(
        malipo: Running, fake: KwikFake) -> None:
    created = await create_all(malipo, [order("paid", amount=1000 + i) for i in range(49)])
    refs = [p.id for p in created]
    fake.advance(refs, webhook=False)
    fake.advance(refs, webhook=False)  # Paid at Kwik; nobody told us yet
    results = [fake.transactions[r] for r in refs]
    broken = dict(results[25])
    broken.pop("transaction_reference")
    results.insert(25, broken)
    assert len(results) == 50
    first = await fake.webhook(results)
    assert [d.status for d in first] == [200]
    statuses = {(await get(malipo, r)).status for r in refs}
    assert statuses == {payment_pb2.STATUS_SUCCEEDED}
    applied = await pool(malipo).fetchval(
        "SELECT count(*) FROM callback_events WHERE provider = 'kwik' "
        "AND payment_id = ANY($1::text[]) AND outcome = 'APPLIED' "
        "AND event ->> 'raw_status' = 'Paid'", refs)
    assert applied == 49
    # The same delivery again: every result is a duplicate, nothing moves.
    again = await fake.webhook(results)
    assert [d.status for d in again] == [200]
    outcome = await pool(malipo).fetchval(
        "SELECT outcome FROM callback_journal WHERE provider = 'kwik' AND body = $1 "
        "ORDER BY id DESC LIMIT 1", again[0].body)
    assert outcome == "DUPLICATE"


async def test_rate_limit_is_honoured_under_a_burst(malipo: Running, fake: KwikFake) -> None:
    created = await create_all(malipo, [order("pending") for _ in range(5)])
    records = sum(1 for c in fake.calls if "/transactions/record/" in c.path)
    burst = 3 * RATE
    refreshed = await asyncio.gather(*(
        malipo.stub.RefreshPayment(pb.RefreshPaymentRequest(
            payment_id=created[i % len(created)].id), metadata=auth())
        for i in range(burst)))
    assert all(r.payment.status == payment_pb2.STATUS_PROCESSING for r in refreshed)
    after = sum(1 for c in fake.calls if "/transactions/record/" in c.path)
    assert after - records >= burst  # far more than one second's allowance was asked for
    assert fake.rate_limited == 0


async def test_dispute_after_a_lost_paid_webhook_is_flagged_not_lost(
        malipo: Running, fake: KwikFake) -> None:
    """Kwik "Disputed" maps to REVERSED, which the domain enters only from SUCCEEDED. When the
    Paid webhook was lost, the payment is still PROCESSING: it must not become SUCCEEDED or
    REVERSED on our guess, and the dispute must not vanish either: it is flagged once."""
    (p,) = await create_all(malipo, [order("disputed")])
    fake.advance([p.id], webhook=False)  # Sent to Bank
    fake.advance([p.id], webhook=False)  # Paid: this webhook is lost
    fake.advance([p.id])                 # Disputed
    await settled(fake)
    got = await get(malipo, p.id)
    assert got.status == payment_pb2.STATUS_PROCESSING
    assert got.needs_review
    assert got.review_reason.startswith("REVERSED_UNSEEN_SUCCESS")
    assert got.provider_status == "Disputed"
    # The reconciler's view (a status call) says the same: nothing more is written.
    refreshed = (await malipo.stub.RefreshPayment(pb.RefreshPaymentRequest(payment_id=p.id),
                                                  metadata=auth())).payment
    assert refreshed.status == payment_pb2.STATUS_PROCESSING
    reviews = await pool(malipo).fetchval(
        "SELECT count(*) FROM (SELECT payload->>'payment_id' AS pid, "
        "(payload->>'needs_review')::boolean AS r FROM outbox UNION ALL "
        "SELECT payment_id, needs_review FROM events) e WHERE pid = $1 AND r", p.id)
    assert reviews == 1
