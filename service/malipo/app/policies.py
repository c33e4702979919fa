"""Per-provider reconciler schedule and expiry rule, from configuration."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class ExpiryAction(StrEnum):
    FAIL = "FAIL"      # still unsettled after expire_after: FAILED with reason EXPIRED
    REVIEW = "REVIEW"  # keep the status, flag needs_review, stop polling


@dataclass(frozen=True, slots=True)
class PollPolicy:
    start_after_s: float = 5.0
    interval_s: float = 10.0
    backoff: float = 2.0
    max_interval_s: float = 600.0
    max_attempts: int = 50
    expire_after_s: float = 86400.0
    on_expiry: ExpiryAction = ExpiryAction.FAIL
    # a PENDING payment whose create call never finished is resumed after this long
    submit_grace_s: float = 60.0
    # a PENDING payment the provider could not take (unavailable) is failed after this long
    submit_give_up_s: float = 600.0

    def first_poll(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.start_after_s)

    def next_poll(self, attempts: int, now: datetime) -> datetime:
        """Exponential backoff with full jitter on the growing part."""
        base = min(self.max_interval_s, self.interval_s * (self.backoff ** max(0, attempts - 1)))
        jittered = self.interval_s + random.uniform(0, max(0.0, base - self.interval_s))
        return now + timedelta(seconds=min(self.max_interval_s, jittered))

    def expired(self, created_at: datetime, attempts: int, now: datetime, *,
                not_before: datetime | None = None) -> bool:
        """`not_before`: the payment cannot settle earlier, so only time after it counts
        (attempts made while it could not settle say nothing about the provider)."""
        if not_before is not None:
            return (now - max(created_at, not_before)).total_seconds() >= self.expire_after_s
        return (now - created_at).total_seconds() >= self.expire_after_s or (
            attempts >= self.max_attempts
        )
