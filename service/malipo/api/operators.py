"""Operator keys (MALIPO_OPERATOR_KEYS): a set apart from tenant keys, for ResolvePayment and
ResolveRefund.

An operator key names a person or team, not a tenant, and reaches every tenant's payments
through the operator-only methods alone (api/edge.py). Like tenant keys, only SHA-256
digests are kept; audit records name a key by `key_id`, never by the key."""

from __future__ import annotations

from collections.abc import Iterable

from malipo.api.auth import ApiKeys, digest
from malipo.domain.resolutions import Operator


def key_id(key_digest: str) -> str:
    """A short, stable, non-secret name of a key: 8 hex digits of its SHA-256 digest, which
    tell nothing usable about the key."""
    return key_digest[:8]


class OperatorKeys:
    def __init__(self, operators: Iterable[tuple[str, str]], tenants: ApiKeys) -> None:
        """`operators` are (operator name, plain key) pairs from config."""
        self._operators: dict[str, Operator] = {}
        for name, key in operators:
            if tenants.tenant_for(key) is not None:
                raise ValueError(f"operator {name!r}'s key is also a tenant key; operator "
                                 "keys must be their own")
            d = digest(key)
            self._operators[d] = Operator(name, key_id(d))

    def operator_for(self, key: str) -> Operator | None:
        return self._operators.get(digest(key))
