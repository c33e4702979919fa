"""Kwik's HTTP endpoints, one method each: Basic auth, the shared rate limit, phase errors.

Every call goes through the account's SlidingWindowLimiter, then ProviderHttp (which splits
transport failures by phase and records masked exchanges). Bodies are parsed with Decimal
floats (exact_json.loads). Statuses the document does not describe are read conservatively:
401/403 are refused credentials, 404 on a record is "no such record", any other 4xx is a
refusal with Kwik's `message` when it gives one. A 2xx whose body cannot be read says
nothing about what Kwik did: for a submission the outcome is unknown, a read is retried.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from malipo.app.connector import CallContext
from malipo.connectors.exact_json import loads
from malipo.connectors.http import HttpReply, ProviderHttp
from malipo.connectors.kwik.ratelimit import SlidingWindowLimiter
from malipo.connectors.kwik.settings import KwikSettings
from malipo.domain.errors import (
    ProviderNotFound,
    ProviderOutcomeUnknown,
    ProviderRejectedRequest,
    ProviderUnavailable,
)
from malipo.redaction import mask_text


class KwikClient:
    def __init__(self, settings: KwikSettings, *, http: ProviderHttp,
                 limiter: SlidingWindowLimiter) -> None:
        base = settings.base_url
        self._base = base if base.endswith("/") else base + "/"
        # Kwik's documented form: "Basic " + base64("api_key:api_secret").
        token = base64.b64encode(f"{settings.api_key}:{settings.api_secret}".encode()).decode()
        self._headers = {"Authorization": "Basic " + token}
        self._http = http
        self._limiter = limiter
        self._timeout_s = settings.timeout_s
        self._payment_record_path = settings.payment_record_path
        self._lookups_path = settings.status_lookups_path.lstrip("/")

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
        return self._body(reply, "payments/submit", mutating=True)

    async def payment_record(self, reference: str, ctx: CallContext) -> Any:
        """A submission by our transaction_reference (setting payment_record_path: the
        documents name no such call). It exists before the collection run does."""
        path = self._payment_record_path.replace("{reference}", quote(reference, safe=""))
        reply = await self._call("GET", path.lstrip("/"), ctx, operation="kwik.payment",
                                 mutating=False)
        if reply.status == 404:
            raise ProviderNotFound(f"Kwik has no payment with reference {reference}")
        return self._body(reply, "payments/record")

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

    async def lookups(self, ctx: CallContext) -> Any:
        """Status names (setting status_lookups_path; Kwik's public docs, not the .txt)."""
        reply = await self._call("GET", self._lookups_path, ctx, operation="kwik.lookups",
                                 mutating=False)
        return self._body(reply, "lookups")

    @staticmethod
    def _body(reply: HttpReply, what: str, *, mutating: bool = False) -> Any:
        try:
            body = loads(reply.body) if reply.body.strip() else None
        except (ValueError, UnicodeDecodeError):
            body = None
        if reply.status in (401, 403):
            raise ProviderRejectedRequest(f"Kwik refused the API credentials (HTTP {reply.status})",
                                          reason="PROVIDER_AUTH_FAILED")
        if not 200 <= reply.status < 300:
            raise ProviderRejectedRequest(f"Kwik refused {what} (HTTP {reply.status}): "
                                          f"{_message(body)}")
        if not isinstance(body, Mapping):
            text = f"Kwik answered {what} HTTP {reply.status} with a body that is not JSON"
            if mutating:  # it may have acted on it: never FAILED on a guess
                raise ProviderOutcomeUnknown(text)
            raise ProviderUnavailable(text)
        if body.get("status") is False:
            raise ProviderRejectedRequest(f"Kwik refused {what}: {_message(body)}")
        return body


def _message(body: Any) -> str:
    if isinstance(body, Mapping):
        text = body.get("message") or body.get("error") or ""
        return mask_text(str(text))[:300] or "no message"
    return "no message"
