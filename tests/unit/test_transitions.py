from datetime import UTC, datetime

import pytest

from malipo.domain.money import Money
from malipo.domain.payments import ChangeKind, Payment, ProviderUpdate, apply_update
from malipo.domain.status import ALLOWED, FINAL, Direction, Method, Status, can_move, predecessors

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def payment(status: Status = Status.PROCESSING) -> Payment:
    return Payment(id="pay_1", tenant="t", direction=Direction.COLLECTION, provider="p",
                   account="a", method=Method.MOBILE_MONEY, amount=Money.of(1000, "KES"),
                   idempotency_key="k", created_at=NOW, updated_at=NOW, status=status)


def test_final_statuses_have_no_way_out() -> None:
    for status in FINAL:
        assert ALLOWED[status] == frozenset()


def test_late_processing_never_overwrites_succeeded() -> None:
    assert not can_move(Status.SUCCEEDED, Status.PROCESSING)
    change = apply_update(payment(Status.SUCCEEDED), ProviderUpdate(Status.PROCESSING), NOW)
    assert change.kind is ChangeKind.IGNORED
    assert change.after.status is Status.SUCCEEDED


def test_unknown_is_never_entered_from_processing() -> None:
    assert not can_move(Status.PROCESSING, Status.UNKNOWN)
    assert Status.UNKNOWN not in ALLOWED[Status.SUCCEEDED]


def test_predecessors_are_the_sql_guard() -> None:
    assert predecessors(Status.REVERSED) == frozenset({Status.SUCCEEDED})
    assert Status.SUCCEEDED not in predecessors(Status.PROCESSING)


def test_amount_mismatch_flags_and_keeps_status() -> None:
    change = apply_update(payment(), ProviderUpdate(Status.SUCCEEDED,
                                                    amount=Money.of(999, "KES")), NOW)
    assert change.kind is ChangeKind.REVIEW
    assert change.after.status is Status.PROCESSING
    assert change.after.needs_review


def test_currency_mismatch_flags() -> None:
    change = apply_update(payment(), ProviderUpdate(Status.SUCCEEDED,
                                                    amount=Money.of(1000, "UGX")), NOW)
    assert change.kind is ChangeKind.REVIEW


@pytest.mark.parametrize("target", [Status.SUCCEEDED, Status.FAILED, Status.CANCELLED])
def test_allowed_transition_is_applied(target: Status) -> None:
    change = apply_update(payment(), ProviderUpdate(target, failure_reason="X"), NOW)
    assert change.kind is ChangeKind.TRANSITION
    assert change.after.status is target
    assert change.after.failure_reason == ("" if target is Status.SUCCEEDED else "X")


@pytest.mark.parametrize("status", [Status.PROCESSING, Status.UNKNOWN, Status.ACTION_REQUIRED])
def test_reversal_of_a_success_never_seen_flags_once_and_keeps_status(status: Status) -> None:
    disputed = ProviderUpdate(Status.REVERSED, provider_status="Disputed",
                              failure_reason="DISPUTED")
    change = apply_update(payment(status), disputed, NOW)
    assert change.kind is ChangeKind.REVIEW
    assert change.after.status is status
    assert change.after.needs_review
    assert change.after.review_reason.startswith("REVERSED_UNSEEN_SUCCESS")
    assert change.after.provider_status == "Disputed"
    again = apply_update(change.after, disputed, NOW)
    assert again.kind is ChangeKind.IGNORED
    assert not again.writes


@pytest.mark.parametrize("status", [Status.FAILED, Status.CANCELLED, Status.REVERSED])
def test_reversal_of_a_settled_payment_is_ignored(status: Status) -> None:
    change = apply_update(payment(status), ProviderUpdate(Status.REVERSED), NOW)
    assert change.kind is ChangeKind.IGNORED
    assert not change.after.needs_review
