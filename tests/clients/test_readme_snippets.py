"""The README's client examples are the code the client tests run, character for character."""

from __future__ import annotations

import re
import textwrap

import pytest

from tests.conftest import ROOT

EXAMPLES = {
    "python": "clients/python/examples/create_and_watch.py",
    "js": "clients/typescript/examples/create_and_watch.js",
    "go": "clients/go/examples/create_and_watch/main.go",
}


def snippet(path: str) -> str:
    text = (ROOT / path).read_text()
    found = re.search(r"\n[^\n]*snippet:start\n(.*?\n)[^\n]*snippet:end", text, re.S)
    assert found, f"{path} has no snippet markers"
    return textwrap.dedent(found.group(1).expandtabs(4))


def readme_block(language: str, path: str) -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(rf"<!-- snippet: {re.escape(path)} -->\n```{language}\n(.*?\n)```",
                      readme, re.S)
    assert found, f"README.md has no {language} block for {path}"
    return found.group(1)


@pytest.mark.parametrize(("language", "path"), EXAMPLES.items())
def test_readme_shows_the_tested_example(language: str, path: str) -> None:
    assert readme_block(language, path) == snippet(path)
