"""RecentPayments: the newest copies, up to a size, each replaced by its latest write."""

from __future__ import annotations

from datetime import UTC, datetime

from malipo.app.inflight import RecentPayments
from malipo.domain.money import Money
from malipo.domain.payments import Payment
from malipo.domain.status import Direction, Method


def _payment(n: int, version: int = 0) -> Payment:
    now = datetime.now(UTC)
    return Payment(id=f"pay_{n}", tenant="t", direction=Direction.COLLECTION,
                   provider="simulator", account="default", method=Method.MOBILE_MONEY,
                   amount=Money.of(100, "KES"), idempotency_key=f"k{n}", created_at=now,
                   updated_at=now, version=version)


def test_the_oldest_written_copy_goes_first_and_a_rewrite_is_newest() -> None:
    recent = RecentPayments(size=2)
    recent.wrote(_payment(1))
    recent.wrote(_payment(2))
    recent.wrote(_payment(1, version=1))  # written again: the newest now
    recent.wrote(_payment(3))

    assert recent.get("pay_2") is None
    kept = recent.get("pay_1")
    assert kept is not None and kept.version == 1
    assert recent.get("pay_3") is not None


def test_a_forgotten_copy_is_gone() -> None:
    recent = RecentPayments()
    recent.wrote(_payment(1))
    recent.forget("pay_1")
    recent.forget("pay_1")  # twice is fine: the caller need not know it was there
    assert recent.get("pay_1") is None


def test_a_size_of_nought_keeps_none() -> None:
    """MALIPO_RECENT_PAYMENTS=0: every callback reads its payment, as before the copies."""
    recent = RecentPayments(size=0)
    recent.wrote(_payment(1))
    assert recent.get("pay_1") is None
