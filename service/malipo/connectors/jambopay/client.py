"""JamboPay over HTTP: the bearer token, and one method per endpoint.

Auth (the status document only says "app key in the header, bearer token in the
authorization section"; the rest is assumed, see settings.py): a token is obtained by POSTing
the agency credentials, form-encoded, to the token endpoint, and every API call carries
`Authorization: Bearer ...`
plus the app key header. The token is cached until shortly before `expires_in`, and a 401
from an API call refreshes it once and repeats the call before giving up: a 401 means the
call was refused before anything happened, so repeating even a commit is safe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from malipo.app.connector import CallContext
from malipo.connectors.exact_json import loads
from malipo.connectors.http import HttpReply, ProviderHttp
from malipo.connectors.jambopay.settings import JambopaySettings
from malipo.domain.errors import ProviderRejectedRequest

FORM = "application/x-www-form-urlencoded"
PRESENTMENT_PATH = "/api/payments/POST"
COMMIT_PATH = "/api/payments/PUT"
STATUS_PATH = "/api/payments/gettransactionstatus"


@dataclass(frozen=True, slots=True)
class ApiReply:
    """An answer other than 401/429/5xx; `data` is None when the body is not JSON."""

    status: int
    data: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float  # monotonic


class JambopayClient:
    def __init__(self, settings: JambopaySettings, http: ProviderHttp | None = None) -> None:
        self._s = settings
        self._http = http or ProviderHttp(provider="jambopay", timeout_s=settings.timeout_s)
        self._token: _Token | None = None
        self._lock = asyncio.Lock()

    async def present(self, form: Mapping[str, str], ctx: CallContext) -> ApiReply:
        # Not mutating for the phase rules: an uncommitted presentment moves no money and
        # expires, so a lost answer is safe to repeat (ProviderUnavailable, not UNKNOWN).
        return await self._call("POST", PRESENTMENT_PATH, ctx, operation="jambopay.presentment",
                                mutating=False, form=form)

    async def commit(self, form: Mapping[str, str], ctx: CallContext) -> ApiReply:
        return await self._call("PUT", COMMIT_PATH, ctx, operation="jambopay.commit",
                                mutating=True, form=form)

    async def transaction_status(self, transaction_id: str, ctx: CallContext) -> ApiReply:
        return await self._call("GET", STATUS_PATH, ctx, operation="jambopay.status",
                                mutating=False, params={"transactionid": transaction_id})

    async def close(self) -> None:
        await self._http.close()

    async def _call(self, method: str, path: str, ctx: CallContext, *, operation: str,
                    mutating: bool, form: Mapping[str, str] | None = None,
                    params: Mapping[str, str] | None = None) -> ApiReply:
        token = await self._bearer(ctx)
        reply = await self._send(method, path, ctx, token, operation=operation,
                                 mutating=mutating, form=form, params=params)
        if reply.status == 401:
            token = await self._bearer(ctx, stale=token)
            reply = await self._send(method, path, ctx, token, operation=operation,
                                     mutating=mutating, form=form, params=params)
            if reply.status == 401:
                raise ProviderRejectedRequest(
                    f"{operation}: JamboPay refused our token and app key (HTTP 401) "
                    "after a token refresh")
        return ApiReply(reply.status, _json_or_none(reply.body))

    async def _send(self, method: str, path: str, ctx: CallContext, token: str, *,
                    operation: str, mutating: bool, form: Mapping[str, str] | None,
                    params: Mapping[str, str] | None) -> HttpReply:
        headers = {"Authorization": f"Bearer {token}", self._s.app_key_header: self._s.app_key,
                   "Accept": "application/json"}
        if form is not None:
            headers["Content-Type"] = FORM
        return await self._http.request(
            method, self._s.base_url + path, ctx, operation=operation, mutating=mutating,
            data=urlencode(form).encode() if form is not None else None, params=params,
            headers=headers)

    async def _bearer(self, ctx: CallContext, *, stale: str | None = None) -> str:
        """The cached token, or a new one. `stale` is the token a 401 refused: only that one
        is replaced, so concurrent callers hitting the same 401 fetch one new token."""
        async with self._lock:
            cached = self._token
            if cached is not None and cached.value != stale and (
                time.monotonic() < cached.refresh_at
            ):
                return cached.value
            self._token = None
            form = {"grant_type": self._s.grant_type, "username": self._s.username,
                    "password": self._s.password}
            reply = await self._http.request(
                "POST", self._s.token_url, ctx, operation="jambopay.token", mutating=False,
                data=urlencode(form).encode(),
                headers={"Content-Type": FORM, "Accept": "application/json"})
            data = _json_or_none(reply.body)
            body: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
            value = body.get("access_token")
            if reply.status != 200 or not isinstance(value, str) or not value:
                error = body.get("error")
                raise ProviderRejectedRequest(
                    f"jambopay.token: no access token (HTTP {reply.status}"
                    + (f", {error}" if isinstance(error, str) else "") + ")")
            ttl = _seconds(body.get("expires_in"), self._s.token_ttl_s)
            margin = min(self._s.token_refresh_margin_s, ttl / 2)
            self._token = _Token(value, time.monotonic() + ttl - margin)
            return value


def _json_or_none(body: bytes) -> Any:
    try:
        return loads(body) if body else None
    except ValueError:
        return None


def _seconds(value: object, default: float) -> float:
    try:
        seconds = float(str(value))
    except ValueError:
        return default
    return seconds if seconds > 0 else default
