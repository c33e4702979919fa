from datetime import UTC, datetime, timedelta

from malipo.app.policies import PollPolicy
from malipo.reconciler.loop import Breaker


def test_breaker_opens_after_repeated_failures_and_half_opens_later() -> None:
    breaker = Breaker(threshold=3, cool_down_s=0.0)
    for _ in range(3):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state == "open"
    assert breaker.allow()  # cool-down of 0 s: half-open at once
    assert breaker.state == "half_open"
    breaker.failure()
    assert breaker.state == "open"
    breaker.cool_down_s = 3600
    assert not breaker.allow()


def test_breaker_closes_on_success() -> None:
    breaker = Breaker(threshold=1, cool_down_s=0.0)
    breaker.failure()
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed"
    assert breaker.failures == 0


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    policy = PollPolicy(interval_s=10, backoff=2, max_interval_s=100)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for attempts in range(1, 12):
        delay = (policy.next_poll(attempts, now) - now).total_seconds()
        assert 10 <= delay <= 100
    late = [(policy.next_poll(8, now) - now).total_seconds() for _ in range(50)]
    assert max(late) > 20  # it grew past the base interval
    assert len(set(late)) > 1  # and it is jittered


def test_expiry_by_age_or_attempts() -> None:
    policy = PollPolicy(expire_after_s=60, max_attempts=5)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert policy.expired(now - timedelta(seconds=61), 1, now)
    assert policy.expired(now, 5, now)
    assert not policy.expired(now - timedelta(seconds=10), 2, now)


def test_no_expiry_before_the_date_a_payment_can_settle_then_by_age_from_it() -> None:
    policy = PollPolicy(expire_after_s=60, max_attempts=5)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    created = now - timedelta(days=3)
    # Three days old, many attempts, but it cannot settle before tomorrow: not expired.
    assert not policy.expired(created, 500, now, not_before=now + timedelta(days=1))
    # Attempts made while it could not settle do not count after that date either.
    assert not policy.expired(created, 500, now, not_before=now - timedelta(seconds=10))
    assert policy.expired(created, 1, now, not_before=now - timedelta(seconds=61))
