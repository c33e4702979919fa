"""KKiaPay's admin API, one method per endpoint, as its public admin SDKs call it.

Every request carries the three keys as headers (X-API-KEY public, X-PRIVATE-KEY,
X-SECRET-KEY) and a JSON body (the Node.js SDK's encoding; the Python SDK's form encoding is
not used). Credentials appear in headers only, which the exchange log never records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from malipo.app.connector import CallContext
from malipo.connectors.exact_json import loads
from malipo.connectors.http import HttpReply, ProviderHttp
from malipo.domain.errors import (
    ProviderNotFound,
    ProviderOutcomeUnknown,
    ProviderRejectedRequest,
    ProviderUnavailable,
)

from .mapping import provider_text
from .settings import KkiapaySettings


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP status below 500 and its parsed JSON body (5xx never gets here)."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class KkiapayClient:
    def __init__(self, settings: KkiapaySettings, http: ProviderHttp | None = None) -> None:
        self._s = settings
        self._http = http or ProviderHttp(provider="kkiapay", timeout_s=settings.timeout_s)

    def _headers(self) -> dict[str, str]:
        return {
            "Accept": "application/json",
            "X-API-KEY": self._s.public_key,
            "X-PRIVATE-KEY": self._s.private_key,
            "X-SECRET-KEY": self._s.secret_key,
        }

    async def _post(self, path: str, body: dict[str, Any], ctx: CallContext, *,
                    operation: str, mutating: bool) -> Answer:
        reply = await self._http.request(
            "POST", self._s.base_url + path, ctx, operation=operation, mutating=mutating,
            json_body=body, headers=self._headers(),
        )
        return self._answer(reply, operation=operation, mutating=mutating)

    @staticmethod
    def _answer(reply: HttpReply, *, operation: str, mutating: bool) -> Answer:
        try:
            body = loads(reply.body) if reply.body.strip() else {}
        except (ValueError, UnicodeDecodeError):
            body = None
        if reply.status in (401, 403):
            raise ProviderRejectedRequest(
                f"{operation}: KKiaPay refused the API keys (HTTP {reply.status})",
                reason="PROVIDER_AUTH_REFUSED",
            )
        if reply.status == 404:
            raise ProviderNotFound(f"{operation}: KKiaPay knows no such transaction: "
                                   f"{provider_text(body) or 'not found'}")
        if body is None:
            if 200 <= reply.status < 300:
                # It answered, but we cannot read what it did.
                text = f"{operation}: KKiaPay answered HTTP {reply.status} with a non-JSON body"
                if mutating:
                    raise ProviderOutcomeUnknown(text)
                raise ProviderUnavailable(text)
            raise ProviderRejectedRequest(f"{operation}: KKiaPay answered HTTP {reply.status}")
        return Answer(reply.status, body)

    async def transaction_status(self, transaction_id: str, ctx: CallContext) -> Answer:
        """`POST /api/v1/transactions/status`: a read, safe to repeat."""
        return await self._post(self._s.status_path, {"transactionId": transaction_id}, ctx,
                                operation="kkiapay.transaction_status", mutating=False)

    async def revert(self, transaction_id: str, ctx: CallContext) -> Answer:
        """`POST /api/v1/transactions/revert`: refunds (reverses) a successful transaction."""
        return await self._post(self._s.revert_path, {"transactionId": transaction_id}, ctx,
                                operation="kkiapay.revert", mutating=True)

    async def close(self) -> None:
        await self._http.close()
