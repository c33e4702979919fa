"""Kwik's HTTP endpoints, one method each: Basic auth, the shared rate limit, phase errors.

Every call goes through the account's SlidingWindowLimiter, then ProviderHttp (which splits
transport failures by phase and records masked exchanges). Bodies are parsed with Decimal
floats (mapping.loads). Statuses the document does not describe are read conservatively:
401/403 are refused credentials, 404 on a record is "no such transaction", any other 4xx is
a refusal with Kwik's `message` when it gives one.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from malipo.app.connector import CallContext
from malipo.connectors.http import HttpReply, ProviderHttp
from malipo.connectors.kwik.mapping import loads
from malipo.connectors.kwik.ratelimit import SlidingWindowLimiter
from malipo.domain.errors import ProviderNotFound, ProviderRejectedRequest
from malipo.redaction import mask_text


class KwikClient:
    def __init__(self, *, base_url: str, api_key: str, api_secret: str, http: ProviderHttp,
                 limiter: SlidingWindowLimiter, timeout_s: float) -> None:
        self._base = base_url if base_url.endswith("/") else base_url + "/"
        # Kwik's documented form: "Basic " + base64("api_key:api_secret").
        token = base64.b64encode(f"{api_key}:{api_secret}".encode()).decode()
        self._headers = {"Authorization": "Basic " + token}
        self._http = http
        self._limiter = limiter
        self._timeout_s = timeout_s

    async def _call(self, method: str, path: str, ctx: CallContext, *, operation: str,
                    mutating: bool, json_body: Any = None,
                    params: Mapping[str, str] | None = None) -> HttpReply:
        async with self._limiter.slot(ctx.timeout(self._timeout_s)):
            return await self._http.request(
                method, self._base + path, ctx, operation=operation, mutating=mutating,
                json_body=json_body, params=params, headers=self._headers,
            )

    async def submit_payments(self, body: Mapping[str, Any], ctx: CallContext) -> Any:
        """POST /payments/submit. Non-2xx means Kwik refused the whole batch."""
        reply = await self._call("POST", "payments/submit", ctx, operation="kwik.submit",
                                 mutating=True, json_body=body)
        return self._body(reply, "payments/submit")

    async def transaction_record(self, reference: str, ctx: CallContext) -> Any:
        """GET /transactions/record/{reference}: `reference` is our transaction_reference."""
        reply = await self._call("GET", "transactions/record/" + quote(reference, safe=""),
                                 ctx, operation="kwik.record", mutating=False)
        if reply.status == 404:
            raise ProviderNotFound(f"Kwik has no transaction with reference {reference}")
        return self._body(reply, "transactions/record")

    async def transactions(self, params: Mapping[str, str], ctx: CallContext) -> Any:
        reply = await self._call("GET", "transactions", ctx, operation="kwik.transactions",
                                 mutating=False, params=params)
        return self._body(reply, "transactions")

    async def lookups(self, path: str, ctx: CallContext) -> Any:
        """GET /lookups/{type} (Kwik's public docs; not in the seed .txt)."""
        reply = await self._call("GET", path.lstrip("/"), ctx, operation="kwik.lookups",
                                 mutating=False)
        return self._body(reply, "lookups")

    @staticmethod
    def _body(reply: HttpReply, what: str) -> Any:
        try:
            body = loads(reply.body) if reply.body else None
        except ValueError:
            body = None
        if reply.status in (401, 403):
            raise ProviderRejectedRequest(f"Kwik refused the API credentials (HTTP {reply.status})",
                                          reason="PROVIDER_AUTH_FAILED")
        if not 200 <= reply.status < 300:
            raise ProviderRejectedRequest(f"Kwik refused {what} (HTTP {reply.status}): "
                                          f"{_message(body)}")
        if not isinstance(body, Mapping):
            raise ProviderRejectedRequest(f"Kwik answered {what} with a body that is not a "
                                          "JSON object")
        if body.get("status") is False:
            raise ProviderRejectedRequest(f"Kwik refused {what}: {_message(body)}")
        return body


def _message(body: Any) -> str:
    if isinstance(body, Mapping):
        text = body.get("message") or body.get("error") or ""
        return mask_text(str(text))[:300] or "no message"
    return "no message"
