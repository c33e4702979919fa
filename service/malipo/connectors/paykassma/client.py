"""HTTP calls to Paykassma: one method per endpoint, answers parsed, errors by phase.

Both endpoints create money movements, so every call is mutating: a timeout, reset or 5xx
after sending is ProviderOutcomeUnknown (ProviderHttp decides). The secret travels as the
`secret` query parameter (document); ProviderHttp records only the path, never the query.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from malipo.app.connector import CallContext
from malipo.connectors.http import HttpReply, ProviderHttp
from malipo.connectors.paykassma.mapping import WALLET_TYPE, lenient_json
from malipo.connectors.paykassma.signing import canonical_json
from malipo.domain.errors import ProviderOutcomeUnknown, ProviderRejectedRequest

DEPOSIT_PATH = f"/api/v1/payment/create/{WALLET_TYPE}"
WITHDRAWAL_PATH = "/v2/withdrawal/create"


class PaykassmaClient:
    def __init__(self, api_url: str, http: ProviderHttp) -> None:
        self._api = api_url.rstrip("/")
        self._http = http

    async def create_deposit(self, body: Mapping[str, Any], secret: str,
                             ctx: CallContext) -> Mapping[str, Any]:
        reply = await self._http.request(
            "POST", self._api + DEPOSIT_PATH, ctx, operation="paykassma.create_deposit",
            mutating=True, params={"secret": secret}, **_json(body),
        )
        return _answer(reply, "create_deposit")

    async def create_withdrawal(self, body: Mapping[str, Any],
                                ctx: CallContext) -> Mapping[str, Any]:
        reply = await self._http.request(
            "POST", self._api + WITHDRAWAL_PATH, ctx, operation="paykassma.create_withdrawal",
            mutating=True, **_json(body),
        )
        return _answer(reply, "create_withdrawal")

    async def close(self) -> None:
        await self._http.close()


def _json(body: Mapping[str, Any]) -> dict[str, Any]:
    # Sent as the same canonical bytes the withdrawal signature was computed over.
    return {"data": canonical_json(body).encode(),
            "headers": {"Content-Type": "application/json", "Accept": "application/json"}}


def _answer(reply: HttpReply, operation: str) -> Mapping[str, Any]:
    """The answer object. 401/403/404 mean bad credentials or an IP not on Paykassma's
    whitelist (their API answers 404 "Not found" to a wrong secret): nothing was done."""
    if reply.status in (401, 403, 404):
        raise ProviderRejectedRequest(
            f"paykassma {operation}: HTTP {reply.status} (check the secret, the signature "
            "key and the IP whitelist)")
    try:
        answer = lenient_json(reply.body)
    except ValueError:
        answer = None
    if isinstance(answer, Mapping) and "status" in answer:
        return answer  # type: ignore[return-value]
    if 200 <= reply.status < 300:
        # Accepted at HTTP level with a body we cannot read: it may have been created.
        raise ProviderOutcomeUnknown(f"paykassma {operation}: unreadable answer to HTTP "
                                     f"{reply.status}")
    raise ProviderRejectedRequest(f"paykassma {operation}: HTTP {reply.status} without a "
                                  "status answer")
