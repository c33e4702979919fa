"""RecentPayments: the newest copies, up to a memory estimate, each replaced by its latest
write."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime

from malipo.app.inflight import RecentPayments, estimated_bytes
from malipo.domain.money import Money
from malipo.domain.payments import Payment
from malipo.domain.status import Direction, Method

# The most metadata a create accepts (app/commands.py): 50 keys of 64, values of 512.
_FULL_METADATA = {f"{n:02d}".ljust(64, "k"): "v" * 512 for n in range(50)}


def _payment(n: int, version: int = 0, metadata: dict[str, str] | None = None) -> Payment:
    now = datetime.now(UTC)
    return Payment(id=f"pay_{n}", tenant="t", direction=Direction.COLLECTION,
                   provider="simulator", account="default", method=Method.MOBILE_MONEY,
                   amount=Money.of(100, "KES"), idempotency_key=f"k{n}", created_at=now,
                   updated_at=now, version=version, metadata=metadata or {"order": f"o-{n}"})


def test_the_oldest_written_copy_goes_first_and_a_rewrite_is_newest() -> None:
    two = 2 * estimated_bytes(_payment(1))
    recent = RecentPayments(max_bytes=two)
    recent.wrote(_payment(1))
    recent.wrote(_payment(2))
    recent.wrote(_payment(1, version=1))  # written again: the newest now
    recent.wrote(_payment(3))

    assert recent.get("pay_2") is None
    kept = recent.get("pay_1")
    assert kept is not None and kept.version == 1
    assert recent.get("pay_3") is not None
    assert recent.held_bytes <= two


def test_large_copies_take_the_room_of_many_small_ones() -> None:
    small = estimated_bytes(_payment(1))
    recent = RecentPayments(max_bytes=20 * small)
    for n in range(10):
        recent.wrote(_payment(n))
    recent.wrote(_payment(99, metadata=_FULL_METADATA))  # ~35 KB: more than the budget
    assert recent.get("pay_99") is None
    assert all(recent.get(f"pay_{n}") is not None for n in range(10))

    roomy = RecentPayments(max_bytes=estimated_bytes(_payment(99, metadata=_FULL_METADATA)))
    roomy.wrote(_payment(1))
    roomy.wrote(_payment(99, metadata=_FULL_METADATA))  # fits only alone
    assert (roomy.get("pay_1"), roomy.get("pay_99") is not None) == (None, True)


def test_the_estimate_is_near_what_python_holds() -> None:
    """The budget means memory: the estimate stays within a third of what tracemalloc counts
    for copies made and kept, typical ones and ones with the most metadata a create takes."""
    for full in (False, True):
        recent = RecentPayments(max_bytes=10**9)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for n in range(200):  # each copy's texts its own, as copies read from rows are
            metadata = ({f"{key[:-4]}{n:04d}": f"{value[:-4]}{n:04d}"
                         for key, value in _FULL_METADATA.items()} if full else None)
            recent.wrote(_payment(n, metadata=metadata))
        held = (tracemalloc.get_traced_memory()[0] - before) / 200
        tracemalloc.stop()
        assert 0.67 < recent.held_bytes / 200 / held < 1.5


def test_a_forgotten_copy_is_gone() -> None:
    recent = RecentPayments()
    recent.wrote(_payment(1))
    recent.forget("pay_1")
    recent.forget("pay_1")  # twice is fine: the caller need not know it was there
    assert recent.get("pay_1") is None
    assert recent.held_bytes == 0


def test_a_budget_of_nought_keeps_none() -> None:
    """MALIPO_RECENT_PAYMENTS_MB=0: every callback reads its payment, as before the copies."""
    recent = RecentPayments(max_bytes=0)
    recent.wrote(_payment(1))
    assert recent.get("pay_1") is None
