"""The gRPC edge every PaymentService call passes: request id and tenant for the logs, limits,
authentication, RPC metrics and the error table, in that order.

It wraps each servicer method once, when the service is registered. grpc.aio interceptors
run per call instead: two of them resolved the caller's key three times per call and built
new method handlers every time, which was a tenth of a CreatePayment's server time.

- The request id is the caller's `x-request-id` metadata when it is sane, else a new one; it
  is bound (malipo.logs) for every log line of the call, with the tenant and payment id.
- Limits (api/limits.py): a per-tenant request rate, and a cap on concurrent unary calls.
  Calls without a valid key share one bucket, so unauthenticated floods are limited too.
  Server streams (WatchStatus) are rate limited when they open but not counted as
  concurrent: they live for hours, and the event hub's buffers bound their cost.
- The tenant is then required (UNAUTHENTICATED otherwise) and handed to the method through
  `caller_tenant()`; an unknown key logs no tenant. Operator-only unary methods
  (OPERATOR_METHODS) take an operator key instead (api/operators.py), handed over by
  `caller_operator()`; a tenant key there, or an operator key on another unary method, is
  PERMISSION_DENIED. Operators are rate limited and logged as "operator:<name>".
- Each call is counted and timed by method and final status (malipo_rpc_total,
  malipo_rpc_duration_seconds). With tracing on, tenant and payment id go on the server span.
- Domain errors become rich statuses (api/errors.py); nothing else in api/ calls abort.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import grpc
from opentelemetry import trace

from malipo import logs
from malipo.api.auth import ApiKeys
from malipo.api.errors import Context, abort, domain_error
from malipo.api.limits import RateLimiter
from malipo.api.operators import OperatorKeys
from malipo.domain.errors import MalipoError, PermissionDenied, RateLimited, Unauthenticated
from malipo.domain.resolutions import Operator
from malipo.metrics import RPC_LATENCY, RPCS

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_ANONYMOUS = ""
_TENANT: ContextVar[str] = ContextVar("malipo_caller_tenant", default=_ANONYMOUS)
_OPERATOR: ContextVar[Operator | None] = ContextVar("malipo_caller_operator", default=None)
# Unary methods only operator keys may call; every other method needs a tenant key.
OPERATOR_METHODS = frozenset({"ResolvePayment", "ResolveRefund"})

Unary = Callable[[Any, Context], Awaitable[Any]]
Streaming = Callable[[Any, Context], AsyncIterator[Any]]


def caller_tenant() -> str:
    """The authenticated tenant of the call being served (the edge checked it)."""
    tenant = _TENANT.get()
    if not tenant:  # a method reached without the edge: refuse rather than guess
        raise Unauthenticated("missing credentials: send 'authorization: Bearer <api key>'")
    return tenant


def caller_operator() -> Operator:
    """The authenticated operator of an operator-only call (the edge checked it)."""
    operator = _OPERATOR.get()
    if operator is None:  # a method reached without the edge: refuse rather than guess
        raise PermissionDenied("this method needs an operator key",
                               reason="OPERATOR_KEY_REQUIRED")
    return operator


def _role_refusal(operator: Operator | None, operator_only: bool) -> MalipoError | None:
    if operator_only and operator is None:
        return PermissionDenied("only operator keys (MALIPO_OPERATOR_KEYS) may resolve "
                                "payments and refunds; a tenant key may not",
                                reason="OPERATOR_KEY_REQUIRED")
    if operator is not None and not operator_only:
        return PermissionDenied("an operator key may only call "
                                + ", ".join(sorted(OPERATOR_METHODS)),
                                reason="TENANT_KEY_REQUIRED")
    return None


class Edge:
    def __init__(self, keys: ApiKeys, *, rate_per_s: float, burst: int, max_concurrent: int,
                 connection_lost: tuple[type[BaseException], ...]) -> None:
        """`connection_lost`: what the store raises when its database connection went away
        (a retryable UNAVAILABLE, not an internal error)."""
        self._keys = keys
        self._connection_lost = connection_lost
        self._rate = RateLimiter(rate_per_s, burst)
        self._max_concurrent = max_concurrent
        self.in_flight = 0  # unary calls being served now
        self.operators: OperatorKeys | None = None  # bootstrap sets them when configured

    def _enter(self, context: Context, *, counted: bool, operators: bool
               ) -> tuple[str, str, Operator | None, MalipoError | None]:
        """Request id, tenant ("" unless a tenant key), operator (an operator key, where
        `operators` allows one) and the rate or authentication refusal, if any: the
        metadata read once, each key set asked once, one rate bucket taken per call."""
        request_id = key = ""
        for name, value in context.invocation_metadata() or ():
            if name == "authorization":
                scheme, _, token = str(value).partition(" ")
                key = token.strip() if scheme.lower() == "bearer" else ""
            elif name == "x-request-id" and _REQUEST_ID.fullmatch(str(value)):
                request_id = str(value)
        tenant = (self._keys.tenant_for(key) if key else None) or _ANONYMOUS
        operator = None
        if key and not tenant and operators and self.operators is not None:
            operator = self.operators.operator_for(key)
        caller = f"operator:{operator.name}" if operator is not None else tenant
        return (request_id or secrets.token_hex(16), tenant, operator,
                self._refusal(caller, counted=counted))

    def _refusal(self, tenant: str, *, counted: bool) -> MalipoError | None:
        wait = self._rate.check(tenant)
        if wait > 0:
            return RateLimited("request rate limit reached for this tenant; retry later",
                               retry_after_s=round(max(wait, 0.05), 3))
        if counted and 0 < self._max_concurrent <= self.in_flight:
            return RateLimited("too many concurrent requests; retry later", retry_after_s=0.1)
        if tenant == _ANONYMOUS:
            return Unauthenticated("missing credentials or invalid API key: send "
                                   "'authorization: Bearer <api key>'")
        return None

    def unary(self, name: str, method: Unary) -> Unary:
        async def call(request: Any, context: Context) -> Any:
            started, ok = time.perf_counter(), False
            request_id, tenant, operator, refused = self._enter(context, counted=True,
                                                                operators=True)
            if refused is None:  # a known caller within its limits: the method's role next
                refused = _role_refusal(operator, name in OPERATOR_METHODS)
            caller = f"operator:{operator.name}" if operator else tenant
            payment_id = str(getattr(request, "payment_id", "") or
                             getattr(request, "payout_id", "") or "")
            _annotate(caller, payment_id)
            with logs.bound(request_id=request_id, tenant=caller, payment_id=payment_id):
                token = _TENANT.set(tenant)
                operator_token = _OPERATOR.set(operator)
                self.in_flight += 1
                try:
                    if refused is not None:
                        raise refused
                    reply = await method(request, context)
                    ok = True
                    return reply
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    # abort raises AbortError
                    await abort(context, domain_error(name, exc, self._connection_lost))
                finally:
                    self.in_flight -= 1
                    _TENANT.reset(token)
                    _OPERATOR.reset(operator_token)
                    _record(name, "OK" if ok else _code(context), started)

        return call

    def streaming(self, name: str, method: Streaming) -> Streaming:
        async def call(request: Any, context: Context) -> AsyncIterator[Any]:
            started, code = time.perf_counter(), ""
            request_id, tenant, _operator, refused = self._enter(context, counted=False,
                                                                 operators=False)
            _annotate(tenant, "")
            with logs.bound(request_id=request_id, tenant=tenant):
                token = _TENANT.set(tenant)
                try:
                    if refused is not None:
                        raise refused
                    async for message in method(request, context):
                        yield message
                    code = "OK"
                except (asyncio.CancelledError, GeneratorExit):
                    # The client went away (or the server is stopping): not an error.
                    code = "CANCELLED"
                    raise
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    # abort raises AbortError
                    await abort(context, domain_error(name, exc, self._connection_lost))
                finally:
                    with contextlib.suppress(ValueError):  # closed from another context
                        _TENANT.reset(token)
                    _record(name, code or _code(context), started)

        return call


class _Guarded:
    """The servicer as grpc registers it: each RPC method wrapped by the edge, once."""

    def __init__(self, servicer: object, edge: Edge) -> None:
        self._servicer = servicer
        self._edge = edge

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._servicer, name)
        if inspect.isasyncgenfunction(method):
            return self._edge.streaming(name, method)
        return self._edge.unary(name, method)


def guarded(servicer: object, edge: Edge) -> Any:
    """`servicer` behind `edge`, for the generated add_*Servicer_to_server function."""
    return _Guarded(servicer, edge)


def _code(context: Context) -> str:
    code = context.code() if hasattr(context, "code") else None
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


def _annotate(tenant: str, payment_id: str) -> None:
    """Ids only on the gRPC server span (a no-op when tracing is off); never PII."""
    span = trace.get_current_span()
    if span.is_recording():
        if tenant:
            span.set_attribute("malipo.tenant", tenant)
        if payment_id:
            span.set_attribute("malipo.payment_id", payment_id)


# (method, code) -> its counter and histogram: `labels()` on every call cost more than
# updating them. Bounded: methods times status codes.
_RECORDERS: dict[tuple[str, str], tuple[Any, Any]] = {}


def _record(method: str, code: str, started: float) -> None:
    recorders = _RECORDERS.get((method, code))
    if recorders is None:
        recorders = _RECORDERS[(method, code)] = (RPCS.labels(method, code),
                                                  RPC_LATENCY.labels(method, code))
    calls, latency = recorders
    calls.inc()
    latency.observe(time.perf_counter() - started)
