"""Item 20: every log record of the whole test session goes to a file, then is scanned.

Registered from tests/conftest.py. At the end of the session (each xdist worker scans its own
file) a record holding an API key, a provider secret or an unmasked phone number fails the run.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path

import pytest

from tests.harness import TENANT_KEYS

SECRETS = [*TENANT_KEYS.values(), "secret-test", "dev_"]
# Unmasked phone numbers in E.164 (or national) form: the masks keep only the last 3 digits.
PHONE = re.compile(r"(?<![\w*])\+?(?:254|255|256|229|233|234|250|260|27)\d{8,9}(?!\d)")
# Outbound webhook signing secrets (malipo/webhooks/signing.py), whoever generated them.
WEBHOOK_SECRET = re.compile(r"whsec_[A-Za-z0-9+/]{20,}")
_state: dict[str, logging.FileHandler] = {}


def log_path() -> Path:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return Path(tempfile.gettempdir()) / f"malipo-test-logs-{os.getpid()}-{worker}.log"


def findings(text: str) -> list[str]:
    found = [f"secret {s[:4]}..." for s in SECRETS if s in text]
    found += [f"phone ...{m.group(0)[-3:]}" for m in PHONE.finditer(text)]
    found += ["webhook secret" for _ in WEBHOOK_SECRET.finditer(text)]
    return found


def pytest_configure(config: pytest.Config) -> None:
    _handler = _state["handler"] = logging.FileHandler(log_path(), mode="w", encoding="utf-8")
    _handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    _handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(_handler)
    logging.getLogger("malipo").setLevel(logging.DEBUG)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    handler = _state.get("handler")
    if handler is None:
        return
    handler.flush()
    found = findings(log_path().read_text(encoding="utf-8", errors="replace"))
    if found:
        session.config.get_terminal_writer().line(
            f"log scan: {len(found)} leak(s) in {log_path()}: {sorted(set(found))[:10]}",
            red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
