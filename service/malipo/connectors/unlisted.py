"""A value a provider's document does not list (a status, an action, an operation type):
read as UNKNOWN, never guessed as FAILED or PROCESSING, and logged once per value, masked, so
a new provider value is noticed without one line per callback or poll."""

from __future__ import annotations

import logging
from functools import lru_cache

from malipo.domain.status import Status
from malipo.redaction import mask_text


def unlisted(log: logging.Logger, provider: str, kind: str, raw: object) -> Status:
    """UNKNOWN for `raw`, which no table of `provider`'s lists; logged once on `log`."""
    report_unlisted(log, provider, kind, raw)
    return Status.UNKNOWN


def report_unlisted(log: logging.Logger, provider: str, kind: str, raw: object) -> None:
    _report(log, provider, kind, mask_text(repr(raw))[:80])


@lru_cache(maxsize=4096)  # bounded: a provider sending ever-new values costs no memory
def _report(log: logging.Logger, provider: str, kind: str, masked: str) -> None:
    log.warning("%s %s %s is not one its document lists: read as UNKNOWN", provider, kind, masked)
