"""Kwik signs nothing: the shared-secret and source rules that stand in for a signature."""

from __future__ import annotations

from malipo.connectors.kwik.signing import secret_matches, source_allowed

ARGS = {"query_param": "token", "header": "X-Kwik-Webhook-Secret"}


def test_secret_in_query_or_header() -> None:
    assert secret_matches("abc", {"token": "abc"}, {}, **ARGS)
    assert secret_matches("abc", {}, {"x-kwik-webhook-secret": "abc"}, **ARGS)


def test_wrong_missing_or_prefix_secret_fails() -> None:
    assert not secret_matches("abc", {"token": "abd"}, {}, **ARGS)
    assert not secret_matches("abc", {"token": "ab"}, {}, **ARGS)
    assert not secret_matches("abc", {}, {}, **ARGS)
    assert not secret_matches("", {"token": ""}, {}, **ARGS)  # an empty secret never matches


def test_source_allow_list() -> None:
    assert source_allowed("1.2.3.4", frozenset())
    assert source_allowed("1.2.3.4", frozenset({"1.2.3.4"}))
    assert not source_allowed("1.2.3.5", frozenset({"1.2.3.4"}))
