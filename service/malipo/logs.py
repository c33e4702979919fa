"""Logging for the whole process, configured once from cli.py.

Masking happens here, at the logging layer, for every record of every logger: the message
after %-formatting, the exception text and any extra fields go through malipo.redaction, so
a careless `log.info("paying %s", phone)` still cannot leak a phone number or a secret.
Context (request id, payment id, tenant) comes from contextvars set at the edges (the gRPC
edge in api/edge.py, the callback listener, the reconciler) and is stamped on each record.
`MALIPO_LOG_FORMAT=json` prints one JSON object per line, with `trace_id` and `span_id` when a
span is active; `text` (the default) is for humans.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace

from malipo.redaction import mask_text, mask_value

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
payment_id: contextvars.ContextVar[str] = contextvars.ContextVar("payment_id", default="")
tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="")
_CONTEXT = {"request_id": request_id, "payment_id": payment_id, "tenant": tenant}

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "taskName", *_CONTEXT}


class bound:  # lower case: it reads as the function it replaced, `with logs.bound(...):`
    """Set request_id / payment_id / tenant for the duration of a block.

    A class rather than a @contextmanager generator: it wraps every gRPC call, and the
    generator machinery cost more than the three context variables it sets."""

    __slots__ = ("_tokens", "_values")

    def __init__(self, **values: str) -> None:
        self._values = values
        self._tokens: list[tuple[contextvars.ContextVar[str], contextvars.Token[str]]] = []

    def __enter__(self) -> None:
        self._tokens = [(_CONTEXT[k], _CONTEXT[k].set(v)) for k, v in self._values.items() if v]

    def __exit__(self, *exc_info: object) -> None:
        for var, token in reversed(self._tokens):
            try:
                var.reset(token)
            except ValueError:  # left from another context (cheaper than suppress())
                continue


class MaskingFilter(logging.Filter):
    """Renders the message, masks it, and freezes it on the record (args cleared), so no
    handler can re-render the unmasked original. Exception text is masked the same way."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_text(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        for key in set(record.__dict__) - _STANDARD:
            record.__dict__[key] = mask_value(key, record.__dict__[key])
        for key, var in _CONTEXT.items():
            if not hasattr(record, key):
                setattr(record, key, var.get())
        span = trace.get_current_span().get_span_context()
        if span.is_valid:  # tracing on and a span active: logs and traces join on these
            record.trace_id = format(span.trace_id, "032x")
            record.span_id = format(span.span_id, "016x")
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in _CONTEXT:
            value = getattr(record, key, "")
            if value:
                event[key] = value
        for key in sorted(set(record.__dict__) - _STANDARD):
            event[key] = record.__dict__[key]
        if record.exc_text:
            event["exc"] = record.exc_text
        if record.stack_info:
            event["stack"] = record.stack_info
        return json.dumps(event, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{k}={v}" for k in _CONTEXT if (v := getattr(record, k, "")))
        return f"{line} [{ids}]" if ids else line


def configure(fmt: str = "text", level: int = logging.INFO,
              stream: TextIO | None = None) -> logging.Handler:
    """Replace the root logger's handlers with one masked handler; returns it (for tests)."""
    if fmt not in ("text", "json"):
        raise ValueError("MALIPO_LOG_FORMAT must be 'text' or 'json'")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(MaskingFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
