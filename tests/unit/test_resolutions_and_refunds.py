"""Pure rules of operator resolutions and refunds, and how operator keys are read."""

import hashlib
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from malipo.api.auth import ApiKeys
from malipo.api.operators import OperatorKeys
from malipo.config import Settings
from malipo.domain.errors import FailedPrecondition, InvalidRequest
from malipo.domain.money import Money
from malipo.domain.payments import ChangeKind, Payment
from malipo.domain.refunds import can_move_refund, refund_status
from malipo.domain.resolutions import Operator, Resolution, resolve
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
