"""Reverts (REVERSED only when KKiaPay confirms); payouts are not offered at all."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import aiohttp
import pytest
from kkiapay_support import KEYS, PaymentFactory, account_for

from malipo.app.connector import CallContext, Confirmation
from malipo.connectors.kkiapay import KkiapayConnector
from malipo.domain.errors import (
    FailedPrecondition,
    ProviderOutcomeUnknown,
    ProviderRejectedRequest,
    Unsupported,
)
from malipo.domain.payments import Payment, apply_update
from malipo.domain.status import Direction, Status
from malipo.sandbox.fake_provider import ResponseFault
from malipo.sandbox.kkiapay import KkiapayFake


async def succeeded(connector: KkiapayConnector, fake: KkiapayFake,
                    make_payment: PaymentFactory, amount: int = 5000) -> Payment:
    payment = make_payment(amount)
    tx = fake.widget_payment(amount, payment.id, notify=False)
    confirmation = Confirmation(provider_transaction_id=tx.transaction_id)
    update = await connector.confirm(payment, confirmation, CallContext())
    return apply_update(payment, update, datetime.now(UTC)).after


async def test_refund_is_reversed_when_kkiapay_confirms(
    connector: KkiapayConnector, fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    payment = await succeeded(connector, fake, make_payment)
    assert payment.status is Status.SUCCEEDED
    update = await connector.refund(payment, CallContext())
    assert update.status is Status.REVERSED
    assert update.provider_reference == payment.provider_reference
    call = fake.calls_to("/api/v1/transactions/revert")[-1]
    assert json.loads(call.body) == {"transactionId": payment.provider_reference}
    reversed_ = apply_update(payment, update, datetime.now(UTC)).after
    assert reversed_.status is Status.REVERSED
    # The status call agrees afterwards, so a lost revert answer is resolved by a poll.
    assert (await connector.fetch_status(payment, CallContext())).status is Status.REVERSED


async def test_refund_refused_by_kkiapay_leaves_the_payment_succeeded(
    connector: KkiapayConnector, fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    payment = await succeeded(connector, fake, make_payment)
    fake.refuse_next_revert("INSUFFICIENT_BALANCE", "merchant balance too low to revert")
    with pytest.raises(ProviderRejectedRequest) as caught:
        await connector.refund(payment, CallContext())
    assert caught.value.reason == "REFUND_REFUSED"
    assert "balance" in caught.value.message
    assert (await connector.fetch_status(payment, CallContext())).status is Status.SUCCEEDED


async def test_refund_of_a_failed_transaction_is_refused(
    connector: KkiapayConnector, fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    payment = make_payment()
    tx = fake.widget_payment(5000, payment.id, status="FAILED", notify=False)
    with pytest.raises(ProviderRejectedRequest):
        await connector.refund(make_payment(provider_reference=tx.transaction_id,
                                            status=Status.SUCCEEDED), CallContext())


async def test_refund_needs_a_verified_transaction(connector: KkiapayConnector,
                                                   make_payment: PaymentFactory) -> None:
    with pytest.raises(FailedPrecondition):
        await connector.refund(make_payment(status=Status.SUCCEEDED), CallContext())


async def test_revert_answer_lost_is_outcome_unknown(
    connector: KkiapayConnector, fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    payment = await succeeded(connector, fake, make_payment)
    fake.chaos.next_response, fake.chaos.response_count = ResponseFault.ERROR_500_AFTER, 1
    with pytest.raises(ProviderOutcomeUnknown):
        await connector.refund(payment, CallContext())
    assert (await connector.fetch_status(payment, CallContext())).status is Status.REVERSED


async def test_revert_without_a_success_code_is_not_reversed(
    fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    # The same success answer read with stricter codes: no confirmation, no REVERSED.
    conn = KkiapayConnector(account_for(fake, revert_success_codes="REVERTED_OK"))
    payment = await succeeded(conn, fake, make_payment)
    update = await conn.refund(payment, CallContext())
    assert update.status is None
    assert update.provider_status == "SUCCESS"
    await conn.close()


async def test_payouts_are_unsupported_and_never_sweep_the_merchant_balance(
    connector: KkiapayConnector, fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    # The document makes merchant-initiated transfers a dashboard action; the admin API's
    # payout schedule sweeps the whole balance, so no per-customer payout may be offered.
    assert not connector.capabilities.payouts
    assert [c.id for c in connector.catalogue().channels
            if c.limits_for(Direction.PAYOUT) is not None] == []
    payout = make_payment(15000, direction=Direction.PAYOUT, channel="moov-bj",
                          status=Status.PENDING)
    with pytest.raises(Unsupported) as caught:
        await connector.create_payout(payout, CallContext())
    assert "dashboard" in caught.value.message
    assert fake.calls == []


async def test_the_fake_has_no_balance_sweep_endpoint(fake: KkiapayFake) -> None:
    headers = {"X-API-KEY": KEYS["public_key"], "X-PRIVATE-KEY": KEYS["private_key"],
               "X-SECRET-KEY": KEYS["secret_key"]}
    body = {"algorithm": "roof", "roof_amount": "15000", "destination": "2290197000000",
            "destination_type": "MOBILE_MONEY", "send_notification": 1}
    async with aiohttp.ClientSession() as http, http.post(
            f"{fake.base_url}/merchant/payouts/schedule", json=body, headers=headers) as resp:
        assert resp.status == 404


async def test_cancel_is_unsupported(connector: KkiapayConnector,
                                     make_payment: PaymentFactory) -> None:
    assert not connector.capabilities.cancellations
    with pytest.raises(Unsupported):
        await connector.cancel(make_payment(), CallContext())


async def test_the_word_after_a_revert_is_the_fakes_own_default_only(
    fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    # The documents name no status for a reverted transaction: `reverted_status` assumes
    # REVERTED, the fake's one reading; a connector assuming another word learns nothing.
    conn = KkiapayConnector(account_for(fake, reverted_status="REFUNDED"))
    payment = await succeeded(conn, fake, make_payment)
    await conn.refund(payment, CallContext())
    assert (await conn.fetch_status(payment, CallContext())).status is Status.UNKNOWN
    await conn.close()
