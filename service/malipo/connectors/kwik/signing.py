"""Webhook authenticity for Kwik, which documents no signature.

Kwik posts webhooks to a URL configured in its developer section and signs nothing. Two
optional rules stand in for a signature: a shared secret carried by the webhook (as a query
parameter of the configured URL, or as a header if the account can add one), compared in
constant time; and an allow-list of source addresses. Without a secret every webhook is only
a trigger and the service confirms it against GET /transactions/record (the capability
`callbacks_need_confirmation`).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping


def secret_matches(expected: str, query: Mapping[str, str], headers: Mapping[str, str], *,
                   query_param: str, header: str) -> bool:
    """True when either carrier holds `expected`. Both are checked so that neither is
    skipped by a short-circuit on the other's absence."""
    want = expected.encode()
    by_query = hmac.compare_digest(query.get(query_param, "").encode(), want)
    by_header = hmac.compare_digest(headers.get(header.lower(), "").encode(), want)
    return bool(expected) and (by_query or by_header)


def source_allowed(remote: str, allowed: frozenset[str]) -> bool:
    return not allowed or remote in allowed
