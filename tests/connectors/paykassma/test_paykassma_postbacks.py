"""Paykassma postbacks end to end at connector level: the fake posts, the stand-in listener
verifies, parses, applies and answers with callback_answer; the fake re-sends until it gets
HTTP 200 {"status":"ok"}."""

from __future__ import annotations

import asyncio

import aiohttp
from paykassma_support import World, build_payment, open_world

from malipo.app.connector import CallbackOutcome, CallContext
from malipo.domain.payments import Payment
from malipo.domain.status import Direction, Status
from malipo.sandbox.fake_provider import CallbackMode
from malipo.sandbox.paykassma import PaykassmaFake

OK = b'{"status":"ok"}'


async def _deposit(world: World, minor: int = 300000, *, track: bool = True) -> Payment:
    payment = build_payment(minor)
    update = await world.connector.create_payment(payment, CallContext())
    if track:
        world.receiver.track(payment, status=update.status,
                             provider_reference=update.provider_reference)
    return payment


async def test_resending_stops_once_we_answer_ok(world: World) -> None:
    # The postback outruns our own commit: unknown at first, so we answer non-ok and
    # Paykassma re-sends; once the payment is stored, the next attempt is applied and ok.
    payment = await _deposit(world, track=False)
    sending = world.fake.complete_deposit(payment.id)
    for _ in range(500):
        if len(world.receiver.outcomes) >= 2:
            break
        await asyncio.sleep(0.01)
    world.receiver.track(payment, status=Status.PROCESSING)
    deliveries = await sending
    assert [d.status for d in deliveries[:2]] == [404, 404]
    assert deliveries[-1].status == 200
    assert deliveries[-1].answer == OK
    assert world.receiver.outcomes[-1] is CallbackOutcome.APPLIED
    settled = len(world.fake.deliveries)
    await asyncio.sleep(0.2)  # well past the fake's retry delay
    assert len(world.fake.deliveries) == settled  # no re-send after the ok
    assert world.receiver.payments[payment.id].status is Status.SUCCEEDED


async def test_unknown_transaction_is_retried_until_attempts_run_out(world: World) -> None:
    payment = await _deposit(world, track=False)
    deliveries = await world.fake.complete_deposit(payment.id)
    assert len(deliveries) == world.fake.postback_attempts
    assert {d.status for d in deliveries} == {404}
    assert len(world.receiver.journal) == world.fake.postback_attempts  # all kept for audit


async def test_unknown_transaction_answered_ok_when_configured() -> None:
    async with open_world(unknown_postback_answer="ok") as world:
        payment = await _deposit(world, track=False)
        deliveries = await world.fake.complete_deposit(payment.id)
        assert [(d.status, d.answer) for d in deliveries] == [(200, OK)]
        assert world.receiver.outcomes == [CallbackOutcome.UNKNOWN_PAYMENT]


async def test_duplicate_postback_is_answered_ok_and_applied_once(world: World) -> None:
    payment = await _deposit(world)
    world.fake.chaos.next_callback, world.fake.chaos.callback_count = CallbackMode.TWICE, 1
    deliveries = await world.fake.complete_deposit(payment.id)
    assert [(d.status, d.answer) for d in deliveries] == [(200, OK), (200, OK)]
    assert world.receiver.outcomes == [CallbackOutcome.APPLIED, CallbackOutcome.DUPLICATE]
    assert world.receiver.transitions == [(payment.id, Status.SUCCEEDED)]


async def test_forged_postback_is_rejected_and_never_applied(world: World) -> None:
    world.fake.postback_attempts = 3
    payment = await _deposit(world)
    world.fake.chaos.next_callback, world.fake.chaos.callback_count = CallbackMode.FORGED, 1
    deliveries = await world.fake.complete_deposit(payment.id)
    assert [d.status for d in deliveries] == [401, 401, 401]
    assert set(world.receiver.outcomes) == {CallbackOutcome.REJECTED}
    assert world.receiver.payments[payment.id].status is Status.PROCESSING


async def test_wrong_access_key_is_rejected(world: World) -> None:
    world.fake.postback_attempts = 1
    payment = await _deposit(world)
    world.fake.postback_access_key = "someone-else"
    [delivery] = await world.fake.complete_deposit(payment.id)
    assert delivery.status == 401
    assert world.receiver.outcomes == [CallbackOutcome.REJECTED]


async def test_amount_mismatch_is_flagged_and_answered_ok(world: World) -> None:
    payment = await _deposit(world, 300000)
    deliveries = await world.fake.complete_deposit(payment.id, amount=2999)
    assert [(d.status, d.answer) for d in deliveries] == [(200, OK)]
    assert world.receiver.outcomes == [CallbackOutcome.MISMATCH]
    flagged = world.receiver.payments[payment.id]
    assert flagged.status is Status.PROCESSING
    assert flagged.needs_review
    assert flagged.review_reason.startswith("AMOUNT_MISMATCH")


async def test_signed_form_is_an_assumption_the_fake_checks() -> None:
    # The document does not say which JSON the md5 covers. The fake signs only its reading
    # (the additional_data list), so a connector set to the other form refuses its postbacks:
    # the setting is visible, not silently shared. The "body" form's own vectors are in
    # tests/unit/connectors/paykassma/test_paykassma_signing.py.
    fake = PaykassmaFake(postback_attempts=1)
    async with open_world(fake, postback_signed_form="body") as world:
        payment = await _deposit(world)
        [delivery] = await world.fake.complete_deposit(payment.id)
        assert delivery.status == 401
        assert world.receiver.outcomes == [CallbackOutcome.REJECTED]
        assert world.receiver.payments[payment.id].status is Status.PROCESSING


async def test_withdrawal_postback_for_a_deposit_is_a_mismatch(world: World) -> None:
    payment = build_payment(1594400, "0790916213", direction=Direction.PAYOUT)
    await world.connector.create_payout(payment, CallContext())
    world.receiver.track(payment, direction=Direction.COLLECTION, status=Status.PROCESSING)
    [delivery] = await world.fake.settle_withdrawal(payment.id, 1)
    assert delivery.status == 200  # journaled and flagged; a re-send would say the same
    assert world.receiver.outcomes == [CallbackOutcome.MISMATCH]
    assert world.receiver.payments[payment.id].status is Status.PROCESSING


async def test_http_control_surface_drives_postbacks(world: World) -> None:
    payment = await _deposit(world)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{world.fake.base_url}/_paykassma/config",
                                json={"postback_url": world.receiver.url}) as resp:
            assert resp.status == 200
        async with session.post(
                f"{world.fake.base_url}/_paykassma/deposits/{payment.id}/complete") as resp:
            assert resp.status == 200
        for _ in range(100):
            if world.receiver.transitions:
                break
            await asyncio.sleep(0.01)
        async with session.get(f"{world.fake.base_url}/_paykassma/state") as resp:
            state = await resp.json()
    assert world.receiver.transitions == [(payment.id, Status.SUCCEEDED)]
    assert state["deposits"][0]["completed"] is True
    assert state["deliveries"][0]["status"] == 200
