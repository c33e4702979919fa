"""Limits at the gRPC edge: a per-tenant request rate and a cap on concurrent unary RPCs.

Both are answered RESOURCE_EXHAUSTED with ErrorInfo(RATE_LIMITED) and RetryInfo through the one
error table (api/errors.py). The tenant is read from the same bearer key the servicer checks;
calls without a valid key share one bucket, so unauthenticated floods are limited too.
Server streams (WatchStatus) are rate limited when they open but not counted as concurrent
RPCs: they live for hours, and their cost is bounded by the event hub's buffers instead.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

from malipo.api.auth import ApiKeys
from malipo.api.errors import Context, abort
from malipo.domain.errors import RateLimited

_ANONYMOUS = ""
if TYPE_CHECKING:
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
_EXEMPT = ("/grpc.health.", "/grpc.reflection.")


@dataclass
class TokenBucket:
    rate_per_s: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take one token; 0.0 if granted, else the seconds until one is available."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s


class RateLimiter:
    """One token bucket per tenant; `rate_per_s <= 0` turns it off."""

    def __init__(self, rate_per_s: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s = rate_per_s
        self.burst = float(max(burst, 1))
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def check(self, tenant: str) -> float:
        if self.rate_per_s <= 0:
            return 0.0
        now = self._clock()
        bucket = self._buckets.get(tenant)
        if bucket is None:
            bucket = self._buckets[tenant] = TokenBucket(self.rate_per_s, self.burst,
                                                         self.burst, now)
        return bucket.take(now)


def _bearer(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == "authorization":
            scheme, _, token = str(value).partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


class LimitInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, keys: ApiKeys, *, rate_per_s: float, burst: int,
                 max_concurrent: int) -> None:
        self._keys = keys
        self._rate = RateLimiter(rate_per_s, burst)
        self._max_concurrent = max_concurrent
        self.in_flight = 0

    async def intercept_service(
            self, continuation: Callable[[grpc.HandlerCallDetails],
                                         Awaitable[Handler | None]],
            handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method  # pyright: ignore[reportAttributeAccessIssue]
        if handler is None or method.startswith(_EXEMPT):
            return handler
        key = _bearer(handler_call_details.invocation_metadata)  # pyright: ignore[reportAttributeAccessIssue]
        tenant = (self._keys.tenant_for(key) if key else None) or _ANONYMOUS
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(tenant, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(tenant, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        return handler

    def _refusal(self, tenant: str, *, counted: bool) -> RateLimited | None:
        wait = self._rate.check(tenant)
        if wait > 0:
            return RateLimited("request rate limit reached for this tenant; retry later",
                               retry_after_s=round(max(wait, 0.05), 3))
        if counted and 0 < self._max_concurrent <= self.in_flight:
            return RateLimited("too many concurrent requests; retry later", retry_after_s=0.1)
        return None

    def _unary(self, tenant: str, behaviour: Any) -> Any:
        async def run(request: Any, context: Context) -> Any:
            refused = self._refusal(tenant, counted=True)
            if refused is not None:
                await abort(context, refused)
            self.in_flight += 1
            try:
                return await behaviour(request, context)
            finally:
                self.in_flight -= 1
        return run

    def _stream(self, tenant: str, behaviour: Any) -> Any:
        async def run(request: Any, context: Context) -> AsyncIterator[Any]:
            refused = self._refusal(tenant, counted=False)
            if refused is not None:
                await abort(context, refused)
            async for item in behaviour(request, context):
                yield item
        return run
