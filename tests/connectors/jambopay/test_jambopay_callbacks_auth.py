"""JamboPay callbacks (unsigned, confirmed by a status call) and the bearer token's life."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from jambopay_support import Listener, PayoutFactory, account_for, moved

from malipo.app.connector import CallbackOutcome, CallContext, Confirmation
from malipo.connectors.jambopay import JambopayConnector
from malipo.domain.errors import CallbackRejected, ProviderRejectedRequest
from malipo.domain.payments import Payment
from malipo.domain.status import Status
from malipo.sandbox.fake_provider import CallbackMode
from malipo.sandbox.jambopay import JambopayFake


async def committed_pending(connector: JambopayConnector, fake: JambopayFake,
                            payment: Payment) -> Payment:
    fake.commit_mode = "pending"
    payment = moved(payment, await connector.create_payout(payment, CallContext()))
    return moved(payment, await connector.confirm(payment, Confirmation(), CallContext()))


async def test_token_vending_callback_is_confirmed_by_status_which_brings_the_token(
    fake: JambopayFake, connector: JambopayConnector, listener: Listener,
    payout: PayoutFactory,
) -> None:
    payment = await committed_pending(connector, fake, payout())
    assert payment.status is Status.PROCESSING
    fake.settle(payment.provider_reference, "completed")
    [callback] = await listener.wait_for(1)

    connector.verify_callback(callback)
    [event] = connector.parse_callback(callback)
    assert event.update.status is Status.SUCCEEDED
    assert event.update.provider_reference == payment.provider_reference
    assert event.update.amount == payment.amount
    assert event.update.provider_message == "Token Vending"
    assert event.event_key == f"{payment.provider_reference}:token vending:completed"
    assert connector.capabilities.callbacks_need_confirmation
    confirmed = await connector.fetch_status(payment, CallContext())
    assert confirmed.status is Status.SUCCEEDED
    assert confirmed.fulfilment["token"] == fake.transactions[payment.provider_reference].token
    assert connector.callback_answer(CallbackOutcome.APPLIED).status == 200


async def test_agent_refunded_callback_reverses_a_succeeded_payout(
    fake: JambopayFake, connector: JambopayConnector, listener: Listener,
    payout: PayoutFactory,
) -> None:
    payment = payout(auto_commit=True)
    payment = moved(payment, await connector.create_payout(payment, CallContext()))
    assert payment.status is Status.SUCCEEDED
    await listener.wait_for(1)  # the Token Vending callback of the commit

    fake.settle(payment.provider_reference, "refunded")
    callback = (await listener.wait_for(2))[1]
    [event] = connector.parse_callback(callback)
    assert event.update.status is Status.REVERSED
    assert event.update.failure_reason == "AGENT_REFUNDED"

    confirmed = await connector.fetch_status(payment, CallContext())
    assert confirmed.status is Status.REVERSED
    assert confirmed.failure_reason == "AGENT_REFUNDED"
    reversed_ = moved(payment, confirmed)
    assert reversed_.status is Status.REVERSED
    assert reversed_.fulfilment["token"] == payment.fulfilment["token"]  # kept for the record


async def test_forged_callback_is_contradicted_by_the_status_call(
    fake: JambopayFake, connector: JambopayConnector, listener: Listener,
    payout: PayoutFactory,
) -> None:
    payment = await committed_pending(connector, fake, payout())
    fake.chaos.next_callback, fake.chaos.callback_count = CallbackMode.FORGED, 1
    fake.settle(payment.provider_reference, "failed")
    [callback] = await listener.wait_for(1)

    connector.verify_callback(callback)  # nothing to verify: no signature exists
    [event] = connector.parse_callback(callback)
    assert event.update.status is Status.SUCCEEDED  # the forgery's claim
    truth = await connector.fetch_status(payment, CallContext())
    assert truth.status is Status.FAILED
    assert moved(payment, truth).status is Status.FAILED


async def test_duplicate_callbacks_share_an_event_key(
    fake: JambopayFake, connector: JambopayConnector, listener: Listener,
    payout: PayoutFactory,
) -> None:
    payment = await committed_pending(connector, fake, payout())
    fake.chaos.next_callback, fake.chaos.callback_count = CallbackMode.TWICE, 1
    fake.settle(payment.provider_reference, "completed")
    first, second = await listener.wait_for(2)
    keys = {connector.parse_callback(cb)[0].event_key for cb in (first, second)}
    assert len(keys) == 1


async def test_callback_source_allow_list(
    fake: JambopayFake, listener: Listener, payout: PayoutFactory,
) -> None:
    strict = JambopayConnector(account_for(fake, listener, callback_allowed_ips="10.0.0.0/8"))
    local = JambopayConnector(account_for(fake, listener,
                                          callback_allowed_ips="192.0.2.1, 127.0.0.0/8"))
    try:
        payment = await committed_pending(local, fake, payout())
        fake.settle(payment.provider_reference, "completed")
        [callback] = await listener.wait_for(1)
        local.verify_callback(callback)
        with pytest.raises(CallbackRejected):
            strict.verify_callback(callback)
        assert strict.callback_answer(CallbackOutcome.REJECTED).status == 401
    finally:
        await strict.close()
        await local.close()


async def test_token_is_cached_across_calls(
    fake: JambopayFake, connector: JambopayConnector, payout: PayoutFactory,
) -> None:
    payment = moved(payout(), await connector.create_payout(payout(), CallContext()))
    await connector.fetch_status(payment, CallContext())
    await connector.fetch_status(payment, CallContext())
    assert len(fake.calls_to("/token")) == 1
    form = fake.calls_to("/token")[0].body.decode()
    assert "grant_type=agency" in form
    assert "app_key" not in fake.calls_to("/token")[0].headers  # not needed to authenticate


async def test_token_is_refreshed_once_on_401(
    fake: JambopayFake, connector: JambopayConnector, payout: PayoutFactory,
) -> None:
    first = await connector.create_payout(payout(), CallContext())
    fake.revoke_tokens()
    ctx = CallContext()
    payment = moved(payout(), first)
    update = await connector.confirm(payment, Confirmation(), ctx)
    assert update.status is Status.SUCCEEDED
    assert len(fake.calls_to("/token")) == 2
    assert [c.status for c in fake.calls_to("/api/payments/PUT")] == [401, 200]
    assert [e.operation for e in ctx.exchanges] == [
        "jambopay.commit", "jambopay.token", "jambopay.commit"]


async def test_concurrent_401s_share_one_refresh(
    fake: JambopayFake, connector: JambopayConnector, payout: PayoutFactory,
) -> None:
    payment = moved(payout(), await connector.create_payout(payout(), CallContext()))
    fake.revoke_tokens()
    updates = await asyncio.gather(*(connector.fetch_status(payment, CallContext())
                                     for _ in range(5)))
    assert {u.status for u in updates} == {Status.ACTION_REQUIRED}
    assert len(fake.calls_to("/token")) == 2


async def test_token_is_renewed_before_it_expires(
    fake: JambopayFake, connector: JambopayConnector, payout: PayoutFactory,
) -> None:
    fake.token_ttl_s = 1  # the connector renews at half the lifetime when that is short
    payment = moved(payout(), await connector.create_payout(payout(), CallContext()))
    await asyncio.sleep(0.6)
    await connector.fetch_status(payment, CallContext())
    assert len(fake.calls_to("/token")) == 2
    assert all(c.status == 200 for c in fake.calls if "/api/" in c.path)


async def test_401_after_refresh_fails_without_leaking_secrets(
    fake: JambopayFake, listener: Listener, payout: PayoutFactory,
) -> None:
    wrong_key = JambopayConnector(account_for(fake, listener, app_key="not-the-key"))
    ctx = CallContext()
    try:
        with pytest.raises(ProviderRejectedRequest) as caught:
            await wrong_key.create_payout(payout(), ctx)
    finally:
        await wrong_key.close()
    assert "401" in caught.value.message
    assert len(fake.calls_to("/token")) == 2  # refreshed exactly once
    assert len(fake.calls_to("/api/payments/POST")) == 2
    logged = json.dumps([(e.request_body, e.response_body) for e in ctx.exchanges])
    assert fake.password not in logged
    assert "not-the-key" not in logged
    assert fake.password not in caught.value.message


async def test_bad_credentials_are_rejected(
    fake: JambopayFake, listener: Listener, payout: PayoutFactory,
) -> None:
    wrong = JambopayConnector(account_for(fake, listener, password="wrong-password"))
    try:
        with pytest.raises(ProviderRejectedRequest) as caught:
            await wrong.create_payout(payout(), CallContext())
    finally:
        await wrong.close()
    assert "invalid_grant" in caught.value.message
    assert "wrong-password" not in caught.value.message
    assert fake.calls_to("/api/payments/POST") == []


async def test_exchange_log_masks_token_and_phone(
    fake: JambopayFake, connector: JambopayConnector, payout: PayoutFactory,
) -> None:
    ctx = CallContext()
    payment = moved(payout(), await connector.create_payout(payout(auto_commit=True), ctx))
    logged = json.dumps([(e.request_body, e.response_body) for e in ctx.exchanges])
    assert payment.fulfilment["token"] not in logged
    assert "254712345678" not in logged
    assert fake.password not in logged


async def test_fake_control_surface_over_http(fake: JambopayFake) -> None:
    async with aiohttp.ClientSession() as http, http.post(fake.base_url + "/_control", json={
        "commit_mode": "pending", "presentment_ttl_s": 1.5, "float_balance": "10.00",
        "revoke_tokens": True, "next_callback": "twice",
    }) as resp:
        state = await resp.json()
    assert resp.status == 200
    assert state["next_callback"] == "twice"
    assert fake.commit_mode == "pending"
    assert fake.presentment_ttl_s == 1.5
    assert str(fake.float_balance) == "10.00"
