"""Pure rules of operator resolutions and refunds, and how operator keys are read."""

import hashlib
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from malipo.api.auth import ApiKeys
from malipo.api.operators import OperatorKeys
from malipo.app.commands import ResolveRefund, check_resolve
from malipo.config import Settings
from malipo.domain.errors import FailedPrecondition, InvalidRequest
from malipo.domain.money import Money
from malipo.domain.payments import ChangeKind, Payment
from malipo.domain.refunds import Refund, awaits_review, can_move_refund, refund_status
from malipo.domain.resolutions import (
    Operator,
    Resolution,
    clear_refund_flag,
    resolve,
    resolved_refund,
)
from malipo.domain.review import ReviewReason, review_text, split_review
from malipo.domain.status import Direction, Method, Status

NOW = datetime(2026, 12, 6, tzinfo=UTC)
PAYMENT = Payment(id="pay_1", tenant="acme", direction=Direction.COLLECTION,
                  provider="simulator", account="default", method=Method.UNSPECIFIED,
                  amount=Money.of(1000, "KES"), idempotency_key="k", created_at=NOW,
                  updated_at=NOW, status=Status.PROCESSING)


def _resolution(before: Payment, target: Status) -> Resolution:
    return Resolution("rsl_1", before.id, before.tenant, Operator("ops", "abcd1234"),
                      before.status, target, "EXPIRED", "checked", "statement", "k", NOW)


def test_a_flagged_payment_moves_only_along_the_table() -> None:
    flagged = replace(PAYMENT, needs_review=True,
                      review_reason=review_text(ReviewReason.EXPIRED, "late"))
    change = resolve(flagged, _resolution(flagged, Status.FAILED))
    assert change.kind is ChangeKind.TRANSITION
    assert (change.after.status, change.after.needs_review, change.after.review_reason) == (
        Status.FAILED, False, "")
    assert (change.after.failure_reason, change.after.failure_message) == (
        "OPERATOR_RESOLVED", "checked")
    assert change.provider_payload["resolution"] == {  # type: ignore[comparison-overlap]
        "resolution_id": "rsl_1", "operator": "ops", "key_id": "abcd1234",
        "from_status": "PROCESSING", "to_status": "FAILED", "review_reason": "EXPIRED",
        "reason": "checked", "evidence": "statement"}
    succeeded = replace(flagged, status=Status.SUCCEEDED)
    with pytest.raises(FailedPrecondition) as err:
        resolve(succeeded, _resolution(succeeded, Status.CANCELLED))
    assert err.value.reason == "TRANSITION_NOT_ALLOWED"
    kept = resolve(succeeded, _resolution(succeeded, Status.SUCCEEDED))
    assert (kept.after.status, kept.after.needs_review) == (Status.SUCCEEDED, False)


def test_only_flagged_or_unknown_payments_and_only_final_outcomes() -> None:
    with pytest.raises(FailedPrecondition) as err:
        resolve(PAYMENT, _resolution(PAYMENT, Status.FAILED))
    assert err.value.reason == "NOT_UNDER_REVIEW"
    unknown = replace(PAYMENT, status=Status.UNKNOWN)
    assert resolve(unknown, _resolution(unknown, Status.SUCCEEDED)).after.status is (
        Status.SUCCEEDED)
    for target in (Status.REVERSED, Status.PROCESSING, Status.PENDING):
        with pytest.raises(InvalidRequest):
            resolve(unknown, _resolution(unknown, target))


def test_review_codes_split_from_their_detail() -> None:
    assert split_review("AMOUNT_MISMATCH: provider reported 9.99 KES") == (
        "AMOUNT_MISMATCH", "provider reported 9.99 KES")
    assert split_review(review_text(ReviewReason.EXPIRED, "")) == ("EXPIRED", "")
    assert split_review("") == ("", "")


def test_refund_statuses() -> None:
    assert refund_status(Status.REVERSED) is Status.SUCCEEDED
    assert refund_status(None) is Status.PROCESSING
    assert refund_status(Status.UNKNOWN) is Status.UNKNOWN
    assert can_move_refund(Status.PENDING, Status.SUCCEEDED)
    assert not can_move_refund(Status.SUCCEEDED, Status.FAILED)
    assert not can_move_refund(Status.FAILED, Status.SUCCEEDED)


def test_operator_keys_are_apart_from_tenant_keys() -> None:
    settings = Settings(operator_keys=" ops = op-key ,bob=b-key")
    assert settings.operator_key_pairs() == [("ops", "op-key"), ("bob", "b-key")]
    tenants = ApiKeys([("acme", "tenant-key")])
    operators = OperatorKeys(settings.operator_key_pairs(), tenants)
    assert operators.operator_for("op-key") == Operator(
        "ops", hashlib.sha256(b"op-key").hexdigest()[:8])
    assert operators.operator_for("tenant-key") is None
    assert tenants.tenant_for("op-key") is None
    with pytest.raises(ValueError, match="MALIPO_OPERATOR_KEYS"):
        Settings(operator_keys="ops").operator_key_pairs()
    with pytest.raises(ValueError, match="also a tenant key"):
        OperatorKeys([("ops", "tenant-key")], tenants)


REFUND = Refund(id="rf_1", payment_id="pay_1", tenant="acme", amount=Money.of(400, "KES"),
                idempotency_key="rk", created_at=NOW, updated_at=NOW, status=Status.PENDING,
                needs_review=True, review_reason=review_text(ReviewReason.REFUND_UNSETTLED,
                                                             "no answer"))
LATER = datetime(2026, 12, 7, tzinfo=UTC)


def _refund_resolution(before: Refund, target: Status) -> Resolution:
    return Resolution("rsl_2", before.payment_id, before.tenant, Operator("ops", "abcd1234"),
                      before.status, target, "REFUND_UNSETTLED", "checked", "statement", "k",
                      LATER, refund_id=before.id)


def test_a_flagged_refund_settles_either_way_and_loses_its_flag() -> None:
    failed = resolved_refund(REFUND, _refund_resolution(REFUND, Status.FAILED))
    assert (failed.status, failed.needs_review, failed.review_reason, failed.updated_at) == (
        Status.FAILED, False, "", LATER)
    assert (failed.failure_reason, failed.failure_message) == ("OPERATOR_RESOLVED", "checked")
    unknown = replace(REFUND, status=Status.UNKNOWN, needs_review=False, review_reason="",
                      failure_reason="PROVIDER_OUTCOME_UNKNOWN", failure_message="timeout")
    done = resolved_refund(unknown, _refund_resolution(unknown, Status.SUCCEEDED))
    assert (done.status, done.failure_reason, done.failure_message) == (
        Status.SUCCEEDED, "", "")
    for target in (Status.CANCELLED, Status.REVERSED, Status.PENDING, Status.UNKNOWN):
        with pytest.raises(InvalidRequest):
            resolved_refund(REFUND, _refund_resolution(REFUND, target))


def test_only_unsettled_refunds_flagged_or_unknown_are_resolved() -> None:
    for status in (Status.PENDING, Status.PROCESSING):
        unflagged = replace(REFUND, status=status, needs_review=False, review_reason="")
        with pytest.raises(FailedPrecondition) as err:
            resolved_refund(unflagged, _refund_resolution(unflagged, Status.FAILED))
        assert err.value.reason == "NOT_UNDER_REVIEW"
    for status in (Status.SUCCEEDED, Status.FAILED):
        settled = replace(REFUND, status=status, needs_review=False, review_reason="")
        with pytest.raises(FailedPrecondition) as err:
            resolved_refund(settled, _refund_resolution(settled, Status.SUCCEEDED))
        assert err.value.reason == "NOT_UNDER_REVIEW"
        # A flag a provider's answer left on a settled refund does not reopen it.
        flagged_settled = replace(REFUND, status=status)
        with pytest.raises(FailedPrecondition) as err:
            resolved_refund(flagged_settled, _refund_resolution(flagged_settled, status))
        assert err.value.reason == "TRANSITION_NOT_ALLOWED"


def test_the_payment_flag_clears_when_no_refund_awaits_review() -> None:
    payment = replace(PAYMENT, status=Status.SUCCEEDED, needs_review=True,
                      review_reason=review_text(ReviewReason.REFUND_UNSETTLED, "rf_1"))
    resolution = _refund_resolution(REFUND, Status.FAILED)
    resolved = resolved_refund(REFUND, resolution)
    other = replace(REFUND, id="rf_2")
    assert awaits_review(other)
    assert clear_refund_flag(payment, resolution, [resolved, other]) is None
    # Flagged but settled since (a provider's answer): nothing left for a person.
    settled_other = replace(other, status=Status.SUCCEEDED)
    assert not awaits_review(settled_other)
    change = clear_refund_flag(payment, resolution, [resolved, settled_other])
    assert change is not None
    assert change.kind is ChangeKind.TRANSITION
    assert (change.after.status, change.after.needs_review, change.after.review_reason,
            change.after.updated_at) == (Status.SUCCEEDED, False, "", LATER)
    assert change.reason == "OPERATOR_RESOLVED"
    assert change.provider_payload["resolution"]["refund_id"] == "rf_1"  # type: ignore[index]
    # Another reason's flag is not the refund's to clear; nor is there one to clear.
    mismatch = replace(payment, review_reason=review_text(ReviewReason.AMOUNT_MISMATCH, "x"))
    assert clear_refund_flag(mismatch, resolution, [resolved]) is None
    assert clear_refund_flag(replace(payment, needs_review=False, review_reason=""),
                             resolution, [resolved]) is None


def test_a_payment_resolution_record_names_no_refund() -> None:
    record = _resolution(PAYMENT, Status.FAILED).record()["resolution"]
    assert "refund_id" not in record  # type: ignore[operator]


def test_resolve_refund_input_names_the_refund() -> None:
    cmd = ResolveRefund("ops", "abcd1234", "k", "acme", "", Status.FAILED, "why", "what")
    with pytest.raises(InvalidRequest) as err:
        check_resolve(cmd)
    assert [v.field for v in err.value.violations] == ["refund_id"]
    with pytest.raises(InvalidRequest) as err:
        check_resolve(replace(cmd, refund_id="rf_1", tenant="", evidence=""))
    assert [v.field for v in err.value.violations] == ["tenant", "evidence"]
    assert "refund" in err.value.violations[0].description
    # The key's id is not part of the request: another key of the same operator replays it.
    assert cmd.fingerprint() == replace(cmd, key_id="ffff0000").fingerprint()
