"""API-key authentication: `authorization: Bearer <key>` names the tenant.

Keys are kept only as SHA-256 digests in memory; a key never appears in logs or errors.
The edge (api/edge.py) resolves the caller's tenant once per call."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    def __init__(self, keys: Mapping[str, str]) -> None:
        """`keys` maps tenant -> plain key (from config); only digests are kept."""
        self._tenants = {digest(key): tenant for tenant, key in keys.items()}

    def tenant_for(self, key: str) -> str | None:
        """The tenant whose key this is, by the key's digest. Timing cannot guide a guess:
        a lookup's cost depends on the digest, and a near-miss key has an unrelated one."""
        return self._tenants.get(digest(key))
