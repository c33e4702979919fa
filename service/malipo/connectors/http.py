"""HTTP to providers: one aiohttp session per account, errors split by phase, exchanges logged.

The phase decides what happens to money: a failure before the request left us is
ProviderUnavailable (safe to retry); a failure after it left is ProviderOutcomeUnknown for a
mutating call (the payment becomes UNKNOWN), and ProviderUnavailable for a read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from malipo.app.connector import CallContext, Exchange
from malipo.domain.errors import (
    ProviderOutcomeUnknown,
    ProviderUnavailable,
)
from malipo.metrics import observe_provider_call
from malipo.redaction import mask_body

DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    headers: Mapping[str, str]
    body: bytes


class ProviderHttp:
    """Thin aiohttp wrapper shared by connectors; knows phases, not providers."""

    def __init__(self, *, timeout_s: float = DEFAULT_TIMEOUT_S, limit: int = 100,
                 provider: str = "") -> None:
        self.provider = provider  # the metrics label; the URL's host when not given
        self._timeout_s = timeout_s
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit),
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        ctx: CallContext,
        *,
        operation: str,
        mutating: bool,
        json_body: Any = None,
        data: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: aiohttp.BasicAuth | None = None,
    ) -> HttpReply:
        """Send one request. 5xx and transport errors raise by phase; other statuses return."""
        timeout = ctx.timeout(self._timeout_s)
        if timeout <= 0:
            raise ProviderUnavailable("deadline exceeded before calling the provider")
        payload = data if data is not None else (
            json.dumps(json_body, separators=(",", ":"), ensure_ascii=False).encode()
            if json_body is not None else None
        )
        sent_headers = dict(headers or {})
        if json_body is not None and data is None:
            sent_headers.setdefault("Content-Type", "application/json")
        started = time.monotonic()
        status, body, error = 0, b"", ""
        try:
            async with self._client().request(
                method, url, data=payload, params=params, headers=sent_headers, auth=auth,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                status = resp.status
                body = await resp.read()
                reply = HttpReply(status, {k.lower(): v for k, v in resp.headers.items()}, body)
        except aiohttp.ClientConnectorError as exc:
            error = f"connect failed: {type(exc).__name__}"
            raise ProviderUnavailable(f"{operation}: {error}") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            error = f"{type(exc).__name__} after sending"
            if mutating:
                raise ProviderOutcomeUnknown(f"{operation}: {error}") from None
            raise ProviderUnavailable(f"{operation}: {error}") from None
        finally:
            elapsed = time.monotonic() - started
            observe_provider_call(
                self.provider or urlsplit(url).hostname or "", operation, elapsed,
                error.split(" ")[0].split(":")[0] if error else
                ("http_429" if status == 429 else f"http_{status}" if status >= 500 else ""))
            ctx.exchanges.append(Exchange(
                operation=operation,
                method=method,
                path=urlsplit(url).path,
                request_body=mask_body(payload or b""),
                status=status,
                response_body=mask_body(body),
                latency_ms=round(elapsed * 1000, 2),
                at=datetime.now(UTC),
                error=error,
            ))
        if status == 429:
            raise ProviderUnavailable(f"{operation}: rate limited by the provider (HTTP 429)")
        if status >= 500:
            if mutating:
                raise ProviderOutcomeUnknown(f"{operation}: provider answered HTTP {status}")
            raise ProviderUnavailable(f"{operation}: provider answered HTTP {status}")
        return reply

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
