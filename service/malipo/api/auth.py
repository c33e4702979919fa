"""API-key authentication: `authorization: Bearer <key>` names the tenant, or an operator.

Keys are kept only as SHA-256 digests in memory; a key never appears in logs or errors.
The edge (api/edge.py) resolves the caller's tenant once per call. Operator keys
(MALIPO_OPERATOR_KEYS) are a separate set: they name no tenant and only call ResolvePayment."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from malipo.domain.resolutions import Operator


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id(key_digest: str) -> str:
    """A short, stable, non-secret name of a key (for audit records): 8 hex digits of its
    digest, which tells nothing usable about the key."""
    return key_digest[:8]


class ApiKeys:
    def __init__(self, keys: Mapping[str, str],
                 operators: Mapping[str, str] | None = None) -> None:
        """`keys` maps tenant -> plain key, `operators` operator name -> plain key (from
        config); only digests are kept."""
        self._tenants = {digest(key): tenant for tenant, key in keys.items()}
        self._operators = {d: Operator(name, key_id(d)) for name, d in
                           ((name, digest(key)) for name, key in (operators or {}).items())}

    def tenant_for(self, key: str) -> str | None:
        """The tenant whose key this is, by the key's digest. Timing cannot guide a guess:
        a lookup's cost depends on the digest, and a near-miss key has an unrelated one."""
        return self._tenants.get(digest(key))

    def operator_for(self, key: str) -> Operator | None:
        """The operator whose key this is (asked only when no tenant has it)."""
        return self._operators.get(digest(key))
