"""`idempotency_key_retention_days`: 30 by default, set like every setting, never under a day
(a key purged sooner would let a late retry of a CreatePayment make a second payment)."""

from __future__ import annotations

from pathlib import Path

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
