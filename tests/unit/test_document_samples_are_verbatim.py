"""The connector tests feed each connector and each fake the provider document's own samples:
every sample constant in tests/connectors/<provider>/<provider>_document_samples.py must stand
in docs/providers/ word for word (white space folded, since the documents wrap lines), so a
sample cannot drift into a shape the fake or the connector invented. Computed vectors (names
ending in _DIGEST, made with openssl from a sample) are the one exception."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = " ".join(re.sub(r"\s+", " ", p.read_text(encoding="utf-8"))
                     for p in sorted((ROOT / "docs" / "providers").iterdir()))
MODULES = sorted(p for p in (ROOT / "tests" / "connectors").glob("*/*_document_samples.py")
                 if not p.name.startswith("test_"))


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"samples_{path.parent.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _samples(path: Path) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for name, value in vars(_load(path)).items():
        if name.isupper() and isinstance(value, str | bytes) and not name.endswith("_DIGEST"):
            text = value.decode() if isinstance(value, bytes) else value
            if len(text) >= 12:
                found.append((name, re.sub(r"\s+", " ", text).strip()))
    return found


def test_every_provider_has_samples() -> None:
    assert {p.parent.name for p in MODULES} == {
        "gateway", "paykassma", "kkiapay", "jambopay", "kwik"}
    assert all(_samples(p) for p in MODULES)


@pytest.mark.parametrize("path", MODULES, ids=[p.parent.name for p in MODULES])
def test_samples_stand_in_the_documents_word_for_word(path: Path) -> None:
    missing = [name for name, text in _samples(path) if text not in DOCUMENTS]
    assert not missing, f"{path.name}: not found in docs/providers: {missing}"
