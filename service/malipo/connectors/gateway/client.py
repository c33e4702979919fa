"""The gateway's three endpoints over ProviderHttp, and the account settings they need.

Settings (ProviderAccount.settings; the document gives no URL paths, so they are settings
with the defaults NOTES.md suggests):
  base_url             required, the brand's API root, e.g. https://api.brand.example
  public_id            required, the path parameter naming the merchant
  merchant_id          required, sent in every body
  secret_key           required, signs requests and verifies callbacks
  previous_secret_key  optional, also accepted on callbacks while a key is rotated
  c2b_path             default /api/v1/{public_id}/payment_c2b
  b2c_path             default /api/v1/{public_id}/payment_b2c
  status_path          default /api/v1/{public_id}/status
  timeout_s            default 30 (seconds per call, capped by the caller's deadline)
  send_country         default true (the document lists `country` without "required")
  confirm_via          default "repeat": the OTP goes in a second request of the original
                       operation (the document's B2C text); "status": in a status request
                       with customer_id and extra.otp (the document's Ivory Coast example)
  redirect_lookup      default true: after a C2B on a redirect_c2b channel, ask status once
                       for extra.customer_redirect
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from malipo.app.connector import CallContext, ProviderAccount
from malipo.connectors.gateway import mapping
from malipo.connectors.gateway.signing import signed
from malipo.connectors.http import ProviderHttp
from malipo.domain.errors import (
    ProviderNotFound,
    ProviderOutcomeUnknown,
    ProviderRejectedRequest,
    ProviderUnavailable,
)
from malipo.redaction import mask_text

_TRUE = {"1", "true", "yes", "on"}
C2B_PATH = "/api/v1/{public_id}/payment_c2b"
B2C_PATH = "/api/v1/{public_id}/payment_b2c"
STATUS_PATH = "/api/v1/{public_id}/status"


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    base_url: str
    public_id: str
    merchant_id: str
    secret_key: str
    previous_secret_key: str = ""
    c2b_path: str = C2B_PATH
    b2c_path: str = B2C_PATH
    status_path: str = STATUS_PATH
    timeout_s: float = 30.0
    send_country: bool = True
    confirm_via: str = "repeat"
    redirect_lookup: bool = True

    @classmethod
    def from_account(cls, account: ProviderAccount) -> GatewaySettings:
        s = account.setting
        confirm_via = s("confirm_via", "repeat")
        if confirm_via not in ("repeat", "status"):
            raise ValueError(f"gateway account {account.name}: confirm_via must be "
                             "'repeat' or 'status'")
        return cls(
            base_url=s("base_url").rstrip("/"),
            public_id=s("public_id"),
            merchant_id=s("merchant_id"),
            secret_key=s("secret_key"),
            previous_secret_key=s("previous_secret_key", ""),
            c2b_path=s("c2b_path", C2B_PATH),
            b2c_path=s("b2c_path", B2C_PATH),
            status_path=s("status_path", STATUS_PATH),
            timeout_s=float(s("timeout_s", "30")),
            send_country=s("send_country", "true").lower() in _TRUE,
            confirm_via=confirm_via,
            redirect_lookup=s("redirect_lookup", "true").lower() in _TRUE,
        )

    def url(self, path: str) -> str:
        return self.base_url + path.format(public_id=self.public_id)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(k for k in (self.secret_key, self.previous_secret_key) if k)


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
        """A status read; `mutating` when it carries an OTP (confirm_via = "status")."""
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
            raise ProviderRejectedRequest(
                f"{operation}: the gateway refused the request (HTTP {reply.status}"
                f"{_reason(reply.body)})")
        try:
            parsed = mapping.loads(reply.body)
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
        return parsed

    async def close(self) -> None:
        await self._http.close()


def _reason(body: bytes) -> str:
    try:
        result = json.loads(body).get("result") or {}
        message = f"{result.get('code', '')} {result.get('message', '')}".strip()
    except (ValueError, AttributeError):
        return ""
    return f": {mask_text(message)}" if message else ""
