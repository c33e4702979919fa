"""any_secret_matches: the current or a previous secret verifies, in constant time."""

from __future__ import annotations

import hmac

import pytest

from malipo.connectors import rotation
from malipo.connectors.rotation import any_secret_matches


@pytest.mark.parametrize(("received", "secrets", "ok"), [
    ("s3cret", ("s3cret",), True),
    ("s3cret", ("new", "s3cret"), True),  # rotation: the previous secret still verifies
    ("s3cret", ("s3cret", "old"), True),
    ("s3cre", ("s3cret",), False),
    ("s3cret ", ("s3cret",), False),
    ("S3CRET", ("s3cret",), False),
    ("", ("s3cret",), False),
    ("", ("",), False),  # an empty secret or an empty value never matches
    ("s3cret", (), False),
    ("s3cret", ("", ""), False),
    ("é", ("é",), True),
])
def test_secret_vectors(received: str, secrets: tuple[str, ...], ok: bool) -> None:
    assert any_secret_matches(received, secrets) is ok


def test_expected_is_derived_from_each_secret() -> None:
    def mac(secret: str) -> str:
        return hmac.new(secret.encode(), b"body", "sha256").hexdigest()

    assert any_secret_matches(mac("old"), ("new", "old"), mac)
    assert not any_secret_matches(mac("other"), ("new", "old"), mac)


def test_every_secret_is_compared_even_after_a_match(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    compare = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(b)
        return compare(a, b)

    monkeypatch.setattr(rotation.hmac, "compare_digest", counting)
    assert any_secret_matches("first", ("first", "second", "", "third"))
    assert calls == [b"first", b"second", b"third"]
