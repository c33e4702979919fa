"""Which HTTP 4xx bodies are a refusal (nothing happened) and which leave the outcome open."""

from __future__ import annotations

import pytest

from malipo.connectors.gateway.client import is_refusal


@pytest.mark.parametrize(("body", "refused"), [
    (b"", True),                                                  # no gateway answer at all
    (b"<html>Not Found</html>", True),
    (b"[1]", True),
    (b'{"result": {"code": 102, "message": "Missing parameter"}}', True),
    (b'{"status": 3, "result": {"code": 4, "message": "Amount out of limits"}}', True),
    (b'{"status": 4}', True),
    (b'{"status": -1, "result": {"code": 100, "message": "Invalid signature"}}', False),
    (b'{"status": "-1"}', False),
    (b'{"status": 1}', False),
    (b'{"status": 2}', False),
    (b'{"status": 9}', False),                                    # undocumented: UNKNOWN
])
def test_a_4xx_is_a_refusal_only_when_its_body_does_not_leave_the_outcome_open(
        body: bytes, refused: bool) -> None:
    assert is_refusal(body) is refused
