"""The gateway's three endpoints over ProviderHttp (settings.py names their paths)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from malipo.app.connector import CallContext
from malipo.connectors.exact_json import loads
from malipo.connectors.gateway.mapping import status_of
from malipo.connectors.gateway.settings import GatewaySettings
from malipo.connectors.gateway.signing import signed
from malipo.connectors.http import ProviderHttp
from malipo.domain.errors import (
    ProviderNotFound,
    ProviderOutcomeUnknown,
    ProviderRejectedRequest,
    ProviderUnavailable,
)
from malipo.domain.status import Status
from malipo.redaction import mask_text


class GatewayClient:
    """One async method per endpoint; returns the parsed body, raises by phase."""

    def __init__(self, settings: GatewaySettings, http: ProviderHttp | None = None) -> None:
        self._settings = settings
        self._http = http or ProviderHttp(provider="gateway", timeout_s=settings.timeout_s)

    async def payment_c2b(self, payload: Mapping[str, Any], ctx: CallContext) -> dict[str, Any]:
        return await self._post("payment_c2b", self._settings.c2b_path, payload, ctx,
                                mutating=True)

    async def payment_b2c(self, payload: Mapping[str, Any], ctx: CallContext) -> dict[str, Any]:
        return await self._post("payment_b2c", self._settings.b2c_path, payload, ctx,
                                mutating=True)

    async def status(self, payload: Mapping[str, Any], ctx: CallContext, *,
                     mutating: bool = False) -> dict[str, Any]:
        """A status read; `mutating` when it carries a C2B OTP (extra.otp)."""
        return await self._post("status", self._settings.status_path, payload, ctx,
                                mutating=mutating)

    async def _post(self, operation: str, path: str, payload: Mapping[str, Any],
                    ctx: CallContext, *, mutating: bool) -> dict[str, Any]:
        body = signed(payload, self._settings.secret_key)
        reply = await self._http.request("POST", self._settings.url(path), ctx,
                                         operation=operation, mutating=mutating, json_body=body)
        if reply.status == 404 and operation == "status":
            raise ProviderNotFound(f"status: the gateway does not know order "
                                   f"{payload.get('order_id')}")
        if reply.status >= 400:
            refused = f"{operation}: HTTP {reply.status}{_reason(reply.body)}"
            if not is_refusal(reply.body):
                # -1 is "undefined (for example in an error situation)": not "nothing happened".
                if mutating:
                    raise ProviderOutcomeUnknown(f"{refused}; the gateway's status is undefined")
                raise ProviderUnavailable(refused)
            raise ProviderRejectedRequest(f"the gateway refused the request: {refused}")
        try:
            parsed = loads(reply.body)
            if not isinstance(parsed, dict):
                raise ValueError("not an object")
        except ValueError:
            lost = f"{operation}: HTTP {reply.status} with a body that is not a JSON object"
            if mutating:
                raise ProviderOutcomeUnknown(lost) from None
            raise ProviderUnavailable(lost) from None
        echoed = parsed.get("order_id")
        if echoed is not None and str(echoed) != str(payload.get("order_id")):
            lost = f"{operation}: the gateway answered for another order"
            if mutating:
                raise ProviderOutcomeUnknown(lost)
            raise ProviderUnavailable(lost)
        return parsed  # type: ignore[return-value]

    async def close(self) -> None:
        await self._http.close()


def is_refusal(body: bytes) -> bool:
    """A 4xx is a refusal when its body carries no status, or one that is final and not a
    success (3 failed, 4 cancelled); -1 or any other status leaves the outcome open."""
    try:
        parsed = loads(body)
    except ValueError:
        return True
    if not isinstance(parsed, dict) or "status" not in parsed:
        return True
    return status_of(parsed.get("status")) in (Status.FAILED, Status.CANCELLED)  # type: ignore[union-attr]


def _reason(body: bytes) -> str:
    try:
        result = json.loads(body).get("result") or {}
        message = f"{result.get('code', '')} {result.get('message', '')}".strip()
    except (ValueError, AttributeError):
        return ""
    return f": {mask_text(message)}" if message else ""
