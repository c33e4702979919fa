"""Reverts (REVERSED only when KKiaPay confirms) and payouts through the schedule endpoint."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from kkiapay_support import PaymentFactory, account_for

from malipo.app.connector import CallContext, Confirmation
from malipo.connectors.kkiapay import KkiapayConnector
from malipo.domain.errors import (
    FailedPrecondition,
    InvalidRequest,
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


async def test_payout_is_scheduled_and_followed(
    connector: KkiapayConnector, fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    payout = make_payment(15000, direction=Direction.PAYOUT, channel="moov-bj",
                          status=Status.PENDING)
    connector.validate(payout)
    update = await connector.create_payout(payout, CallContext())
    assert update.status is Status.PROCESSING
    assert update.provider_reference
    sent = fake.payout_requests[-1]
    assert sent == {"algorithm": "roof", "destination": "2290197000000",
                    "destination_type": "MOBILE_MONEY", "send_notification": "1",
                    "roof_amount": "15000"}
    processing = apply_update(payout, update, datetime.now(UTC)).after
    assert (await connector.fetch_status(processing, CallContext())).status is Status.PROCESSING
    fake.settle(update.provider_reference, "SUCCESS", notify=False)
    done = await connector.fetch_status(processing, CallContext())
    assert done.status is Status.SUCCEEDED
    assert apply_update(processing, done, datetime.now(UTC)).after.status is Status.SUCCEEDED


async def test_payout_failure_from_the_operator(
    connector: KkiapayConnector, fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    payout = make_payment(2000, direction=Direction.PAYOUT, status=Status.PENDING)
    update = await connector.create_payout(payout, CallContext())
    processing = apply_update(payout, update, datetime.now(UTC)).after
    fake.settle(update.provider_reference, "FAILED", failure_code="processing_error",
                notify=False)
    failed = await connector.fetch_status(processing, CallContext())
    assert failed.status is Status.FAILED
    assert failed.failure_reason == "PROVIDER_PROCESSING_ERROR"


async def test_payout_rate_algorithm_is_a_setting(fake: KkiapayFake,
                                                  make_payment: PaymentFactory) -> None:
    conn = KkiapayConnector(account_for(fake, payout_algorithm="rate",
                                        payout_rate_frequency="1w"))
    await conn.create_payout(make_payment(direction=Direction.PAYOUT, status=Status.PENDING),
                             CallContext())
    sent = fake.payout_requests[-1]
    assert sent["algorithm"] == "rate"
    assert sent["rate_frequency"] == "1w"
    assert "roof_amount" not in sent
    await conn.close()


async def test_payout_to_a_bad_number_is_refused_before_any_call(
    connector: KkiapayConnector, fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    payout = make_payment(direction=Direction.PAYOUT, phone="+22997000000",
                          status=Status.PENDING)
    with pytest.raises(InvalidRequest):
        connector.validate(payout)
    with pytest.raises(InvalidRequest):
        await connector.create_payout(payout, CallContext())
    assert fake.calls == []


async def test_payout_answer_never_comes_is_outcome_unknown(
    connector: KkiapayConnector, fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    fake.chaos.next_response, fake.chaos.response_count = ResponseFault.TIMEOUT, 1
    fake.chaos.hang_seconds = 2.0
    payout = make_payment(direction=Direction.PAYOUT, status=Status.PENDING)
    with pytest.raises(ProviderOutcomeUnknown):
        await connector.create_payout(payout, CallContext(deadline=time.monotonic() + 0.3))
    assert len(fake.payout_requests) >= 1  # it was processed: exactly why it is UNKNOWN


async def test_cancel_is_unsupported(connector: KkiapayConnector,
                                     make_payment: PaymentFactory) -> None:
    assert not connector.capabilities.cancellations
    with pytest.raises(Unsupported):
        await connector.cancel(make_payment(), CallContext())
