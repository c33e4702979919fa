"""API-key authentication: `authorization: Bearer <key>` names the tenant.

Keys are kept only as SHA-256 digests in memory; a key never appears in logs or errors.
A tenant may hold several keys at once, so a key rotates without downtime: add the new one,
move callers over, remove the old one. `replace` swaps the whole set atomically (a reload of
the keys file or SIGHUP); calls in flight keep the tenant they were admitted with.
The edge (api/edge.py) resolves the caller's tenant once per call."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        """`pairs` are (tenant, plain key) from config; only digests are kept."""
        self._tenants: dict[str, str] = {}
        self.replace(pairs)

    def replace(self, pairs: Iterable[tuple[str, str]]) -> None:
        tenants: dict[str, str] = {}
        for tenant, key in pairs:
            known = tenants.setdefault(digest(key), tenant)
            if known != tenant:
                raise ValueError(f"one API key is given to two tenants ({known!r} and "
                                 f"{tenant!r}); each key must name one tenant")
        self._tenants = tenants

    def tenant_for(self, key: str) -> str | None:
        """The tenant whose key this is, by the key's digest. Timing cannot guide a guess:
        a lookup's cost depends on the digest, and a near-miss key has an unrelated one."""
        return self._tenants.get(digest(key))

    def tenants(self) -> frozenset[str]:
        return frozenset(self._tenants.values())

    def __len__(self) -> int:
        return len(self._tenants)
