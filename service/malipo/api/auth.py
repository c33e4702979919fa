"""API-key authentication: `authorization: Bearer <key>` names the tenant.

Keys are kept only as SHA-256 digests in memory, compared in constant time; a key never
appears in logs or errors."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import grpc

from malipo.domain.errors import Unauthenticated


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    def __init__(self, keys: Mapping[str, str]) -> None:
        """`keys` maps tenant -> plain key (from config); only digests are kept."""
        self._digests = [(digest(key), tenant) for tenant, key in keys.items()]

    def tenant_for(self, key: str) -> str | None:
        wanted = digest(key)
        found = None
        for stored, tenant in self._digests:
            if hmac.compare_digest(stored, wanted):
                found = tenant
        return found

    def tenant(self, context: grpc.aio.ServicerContext[Any, Any]) -> str:
        metadata = context.invocation_metadata() or ()
        header = next((str(v) for k, v in metadata if k == "authorization"), "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise Unauthenticated("missing credentials: send 'authorization: Bearer <api key>'")
        tenant = self.tenant_for(key.strip())
        if tenant is None:
            raise Unauthenticated("invalid API key")
        return tenant
