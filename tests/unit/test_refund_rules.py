"""Refund rules written once in the domain: what settles a whole refund, what refunds add up
to, how anything is flagged for review; and the amount check refunds share with payments."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from malipo.app.commands import CreatePayment, RefundPayment, check_create, check_refund
from malipo.domain.errors import InvalidRequest
from malipo.domain.money import Money
from malipo.domain.payments import Payment, ProviderUpdate, apply_update
from malipo.domain.refunds import (
    Refund,
    RefundTotals,
    is_whole,
    refund_totals,
    settled_by_reversal,
)
from malipo.domain.review import ReviewReason, flagged, split_review
from malipo.domain.status import Direction, Method, Status

NOW = datetime(2026, 12, 6, tzinfo=UTC)
PAYMENT = Payment(id="pay_1", tenant="acme", direction=Direction.COLLECTION,
                  provider="simulator", account="default", method=Method.UNSPECIFIED,
                  amount=Money.of(1000, "KES"), idempotency_key="k", created_at=NOW,
                  updated_at=NOW, status=Status.SUCCEEDED)
REVERSED = replace(PAYMENT, status=Status.REVERSED)


def refund(minor: int, status: Status = Status.PROCESSING) -> Refund:
    return Refund(id=f"rf_{minor}_{status}", payment_id=PAYMENT.id, tenant="acme",
                  amount=Money.of(minor, "KES"), idempotency_key="k", created_at=NOW,
                  updated_at=NOW, status=status)


@pytest.mark.parametrize("status", [Status.PENDING, Status.PROCESSING, Status.UNKNOWN])
def test_a_reversed_payment_settles_its_whole_unsettled_refund(status: Status) -> None:
    assert is_whole(refund(1000, status), PAYMENT)
    assert settled_by_reversal(refund(1000, status), REVERSED)


def test_a_reversal_says_nothing_of_a_part_a_settled_refund_or_a_payment_not_reversed(
        ) -> None:
    assert not is_whole(refund(400), PAYMENT)
    assert not settled_by_reversal(refund(400), REVERSED)
    assert not settled_by_reversal(refund(1000), PAYMENT)
    for final in (Status.SUCCEEDED, Status.FAILED):
        assert not settled_by_reversal(refund(1000, final), REVERSED)


def test_totals_count_succeeded_as_refunded_and_all_but_failed_as_held() -> None:
    refunds = [refund(100, Status.SUCCEEDED), refund(200, Status.PENDING),
               refund(300, Status.UNKNOWN), refund(400, Status.FAILED)]
    assert refund_totals(refunds) == RefundTotals(refunded=100, held=600)
    assert refund_totals([]) == RefundTotals(refunded=0, held=0)


def test_flagging_changes_the_flag_its_reason_and_time_only() -> None:
    later = NOW + timedelta(minutes=1)
    for item in (PAYMENT, refund(400)):
        done = flagged(item, ReviewReason.REFUND_UNSETTLED, "no answer", later)
        assert (done.needs_review, done.updated_at) == (True, later)
        assert split_review(done.review_reason) == ("REFUND_UNSETTLED", "no answer")
        assert replace(done, needs_review=False, review_reason="", updated_at=NOW) == item


def test_a_flag_from_a_provider_update_reads_as_before() -> None:
    change = apply_update(PAYMENT, ProviderUpdate(Status.SUCCEEDED,
                                                  amount=Money.of(999, "KES")), NOW)
    assert change.after.review_reason == (
        "AMOUNT_MISMATCH: provider reported 9.99 KES, expected 10.00 KES")


@pytest.mark.parametrize(("minor", "currency", "field"), [
    (0, "KES", "amount.amount_minor"),
    (10**16, "KES", "amount.amount_minor"),
    (100, "", "amount.currency"),
    (100, "KESX", "amount.currency"),
])
def test_a_partial_refund_amount_is_checked_as_a_payment_amount_is(
        minor: int, currency: str, field: str) -> None:
    create = CreatePayment("acme", "k", Direction.COLLECTION, "simulator", minor, currency)
    partial = RefundPayment("acme", "k", "pay_1", amount_minor=minor, currency=currency)
    violations = []
    for check, cmd in ((check_create, create), (check_refund, partial)):
        with pytest.raises(InvalidRequest) as err:
            check(cmd)  # type: ignore[operator]
        violations.append([(v.field, v.description) for v in err.value.violations])
    assert violations[0] == violations[1]
    assert [f for f, _ in violations[0]] == [field]
    check_refund(RefundPayment("acme", "k", "pay_1"))  # the whole rest: no amount to check
