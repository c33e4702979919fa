"""The rules for a refund left unsettled: never FAILED on a guess, resent only where the
provider dedupes on our refund id, settled by the payment's own REVERSED."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from malipo.app.refund_polls import Step, next_step, send_after_not_found
from malipo.domain.money import Money
from malipo.domain.payments import Payment
from malipo.domain.refunds import Refund, refund_status
from malipo.domain.status import Direction, Method, Status

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PAYMENT = Payment(id="pay_1", tenant="acme", direction=Direction.COLLECTION,
                  provider="simulator", account="default", method=Method.UNSPECIFIED,
                  amount=Money.of(1000, "KES"), idempotency_key="k", created_at=NOW,
                  updated_at=NOW, status=Status.SUCCEEDED)


def refund(status: Status, minor: int = 400) -> Refund:
    return Refund(id="rf_1", payment_id=PAYMENT.id, tenant="acme",
                  amount=Money.of(minor, "KES"), idempotency_key="k", created_at=NOW,
                  updated_at=NOW, status=status)


def step(r: Refund, payment: Payment = PAYMENT, *, can_ask: bool = True,
         resend_safe: bool = False, expired: bool = False) -> Step:
    return next_step(r, payment, can_ask=can_ask, resend_safe=resend_safe, expired=expired)


@pytest.mark.parametrize("status", [Status.PENDING, Status.PROCESSING, Status.UNKNOWN])
def test_an_unsettled_refund_is_asked_about_where_the_provider_can_answer(
        status: Status) -> None:
    assert step(refund(status)) is Step.ASK
    assert step(refund(status), resend_safe=True) is Step.ASK  # asking is cheaper than sending


def test_a_pending_refund_is_resent_without_asking_only_where_the_provider_dedupes() -> None:
    assert step(refund(Status.PENDING), can_ask=False, resend_safe=True) is Step.RESEND
    assert step(refund(Status.PENDING), can_ask=False, resend_safe=False) is Step.WAIT


@pytest.mark.parametrize("status", [Status.PROCESSING, Status.UNKNOWN])
def test_a_sent_refund_is_never_resent_blindly(status: Status) -> None:
    assert step(refund(status), can_ask=False, resend_safe=True) is Step.WAIT


@pytest.mark.parametrize("can_ask", [True, False])
def test_past_the_expiry_rule_a_refund_is_flagged_never_failed(can_ask: bool) -> None:
    assert step(refund(Status.UNKNOWN), can_ask=can_ask, expired=True) is Step.REVIEW


def test_a_whole_refund_of_a_reversed_payment_settles() -> None:
    reversed_ = replace(PAYMENT, status=Status.REVERSED)
    assert step(refund(Status.PROCESSING, 1000), reversed_, can_ask=False) is Step.SETTLE
    assert step(refund(Status.PROCESSING, 1000), reversed_, expired=True) is Step.SETTLE
    # A part of it says nothing about this refund: the payment may be reversed otherwise.
    assert step(refund(Status.PROCESSING, 400), reversed_) is Step.ASK


@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.FAILED])
def test_a_settled_or_flagged_refund_is_left_alone(status: Status) -> None:
    assert step(refund(status)) is Step.DONE
    flagged = replace(refund(Status.PROCESSING), needs_review=True)
    assert step(flagged) is Step.DONE


def test_not_found_allows_sending_a_pending_refund_but_an_unknown_only_if_deduped() -> None:
    assert send_after_not_found(refund(Status.PENDING), resend_safe=False)
    assert not send_after_not_found(refund(Status.UNKNOWN), resend_safe=False)
    assert send_after_not_found(refund(Status.UNKNOWN), resend_safe=True)


def test_a_whole_refund_answer_speaks_of_the_payment() -> None:
    assert refund_status(Status.REVERSED) is Status.SUCCEEDED
    assert refund_status(None) is Status.PROCESSING
    assert refund_status(Status.UNKNOWN) is Status.UNKNOWN
