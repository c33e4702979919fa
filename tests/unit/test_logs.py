# pyright: basic
"""Masking at the logging layer: whatever a call site passes, phone numbers and secrets leave
the process masked, in the message, in `extra` fields and in exception text."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from malipo import logs

PHONE = "+254712345678"
SECRET = "sk_live_51Habc"


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Logger]]:
    stream = io.StringIO()
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    logs.configure("json", stream=stream)
    yield stream, logging.getLogger("malipo.test")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in before:
        root.addHandler(handler)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_masks_phone_and_secret_in_message_extra_and_exception(captured) -> None:
    stream, log = captured
    with logs.bound(request_id="req-1", payment_id="pay_01J", tenant="acme"):
        log.info("paying %s with secret=%s", PHONE, SECRET, extra={"msisdn": PHONE,
                                                                 "api_key": SECRET})
        try:
            raise ValueError(f"provider refused {PHONE} token={SECRET}")
        except ValueError:
            log.exception("create failed")
    raw = stream.getvalue()
    assert PHONE not in raw and "712345678" not in raw
    assert SECRET not in raw
    first, second = lines(stream)
    assert first["msg"] == "paying ***678 with secret=***"
    assert first["msisdn"] == "***678" and first["api_key"] == "***"
    assert (first["request_id"], first["payment_id"], first["tenant"]) == (
        "req-1", "pay_01J", "acme")
    assert first["level"] == "info" and first["logger"] == "malipo.test"
    assert "ValueError: provider refused ***678 token=***" in str(second["exc"])


def test_context_is_unbound_after_the_block(captured) -> None:
    stream, log = captured
    with logs.bound(payment_id="pay_1"):
        pass
    log.warning("after")
    (line,) = lines(stream)
    assert "payment_id" not in line


def test_text_format_masks_too(captured) -> None:
    stream, log = captured
    logs.configure("text", stream=stream)
    with logs.bound(tenant="globex"):
        log.error("Authorization: Bearer %s for %s", SECRET, PHONE)
    out = stream.getvalue()
    assert SECRET not in out and PHONE not in out
    assert "Bearer ***" in out and "***678" in out and "tenant=globex" in out


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="MALIPO_LOG_FORMAT"):
        logs.configure("yaml")


def test_json_lines_carry_the_active_spans_trace_and_span_ids(captured) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    stream, log = captured
    log.info("outside any span")
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        log.info("inside a span")
    outside, inside = lines(stream)
    assert "trace_id" not in outside and "span_id" not in outside
    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
