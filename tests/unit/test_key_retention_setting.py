"""`idempotency_key_retention_days`: 30 by default, set like every setting, never under a day
(a key purged sooner would let a late retry of a CreatePayment make a second payment)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from malipo.config import Settings


def test_keys_are_kept_30_days_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALIPO_IDEMPOTENCY_KEY_RETENTION_DAYS", raising=False)
    monkeypatch.delenv("MALIPO_CONFIG", raising=False)
    assert Settings().idempotency_key_retention_days == 30


def test_the_environment_and_the_file_set_it(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    path = tmp_path / "malipo.toml"
    path.write_text("idempotency_key_retention_days = 45\n")
    monkeypatch.setenv("MALIPO_CONFIG", str(path))
    monkeypatch.delenv("MALIPO_IDEMPOTENCY_KEY_RETENTION_DAYS", raising=False)
    assert Settings.load().idempotency_key_retention_days == 45
    monkeypatch.setenv("MALIPO_IDEMPOTENCY_KEY_RETENTION_DAYS", "90")
    assert Settings.load().idempotency_key_retention_days == 90  # environment over file


@pytest.mark.parametrize("days", [1, 1.5, 400, 36500])
def test_a_day_or_more_is_accepted(days: float) -> None:
    assert Settings(idempotency_key_retention_days=days).idempotency_key_retention_days == days


@pytest.mark.parametrize("days", [0.99, 0, -30, float("nan")])
def test_under_a_day_is_refused_saying_why(days: float) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(idempotency_key_retention_days=days)
    (error,) = caught.value.errors()
    assert error["loc"] == ("idempotency_key_retention_days",)
    assert "MALIPO_IDEMPOTENCY_KEY_RETENTION_DAYS must be at least 1 day" in error["msg"]
    assert "second payment" in error["msg"]


@pytest.mark.parametrize("days", [36501, float("inf")])
def test_past_a_century_is_refused(days: float) -> None:
    with pytest.raises(ValidationError, match="at most 36500 days"):
        Settings(idempotency_key_retention_days=days)


@pytest.mark.parametrize("field", ["event_retention_days", "exchange_retention_days"])
@pytest.mark.parametrize("days", [0, -1, float("nan"), 36501, float("inf")])
def test_the_other_windows_must_be_a_real_window(field: str, days: float) -> None:
    """Nothing or less would purge the event log under the streams reading it; a huge
    window gave the purge a cutoff before year 1."""
    window: dict[str, Any] = {field: days}
    with pytest.raises(ValidationError) as caught:
        Settings(**window)
    (error,) = caught.value.errors()
    assert error["loc"] == (field,)
    assert f"MALIPO_{field.upper()} must be more than 0 and at most 36500 days" in error["msg"]


@pytest.mark.parametrize("field", ["event_retention_days", "exchange_retention_days"])
def test_the_other_windows_take_a_fraction_of_a_day_or_a_century(field: str) -> None:
    for days in (0.5, 36500):
        window: dict[str, Any] = {field: days}
        assert getattr(Settings(**window), field) == days
