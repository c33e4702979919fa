"""The outermost gRPC interceptor: request id and tenant for the logs, RPC metrics.

The request id is the caller's `x-request-id` metadata when it sends a sane one, else a new
one; it is bound (malipo.logs) for every log line of the call. The tenant comes from the same
bearer key the servicer checks; an unknown key logs no tenant. Each call is counted and timed
by method and final status code (malipo_rpc_total, malipo_rpc_duration_seconds). When
tracing is on, the tenant and payment id go on the gRPC server span (malipo.tracing).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc
from opentelemetry import trace

from malipo import logs
from malipo.api.auth import ApiKeys
from malipo.metrics import RPC_LATENCY, RPCS

if TYPE_CHECKING:
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _header(metadata: Any, name: str) -> str:
    return next((str(v) for k, v in metadata or () if k == name), "")


def _code(context: Any, failed: bool) -> str:
    code = context.code() if hasattr(context, "code") else None
    if isinstance(code, grpc.StatusCode):
        return code.name
    return "UNKNOWN" if failed else "OK"


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, keys: ApiKeys) -> None:
        self._keys = keys

    async def intercept_service(
            self, continuation: Callable[[grpc.HandlerCallDetails],
                                         Awaitable[Handler | None]],
            handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method  # pyright: ignore[reportAttributeAccessIssue]
        metadata = handler_call_details.invocation_metadata  # pyright: ignore[reportAttributeAccessIssue]
        wanted = _header(metadata, "x-request-id")
        request_id = wanted if _REQUEST_ID.fullmatch(wanted) else uuid.uuid4().hex
        scheme, _, key = _header(metadata, "authorization").partition(" ")
        tenant = (self._keys.tenant_for(key.strip()) if scheme.lower() == "bearer" and key
                  else None) or ""
        name = method.rsplit("/", 1)[-1]
        if handler.unary_unary is not None:
            behaviour = handler.unary_unary

            async def unary(request: Any, context: Any) -> Any:
                started, failed = time.perf_counter(), True
                payment_id = str(getattr(request, "payment_id", "") or
                                 getattr(request, "id", "") or "")
                _annotate(tenant, payment_id)
                with logs.bound(request_id=request_id, tenant=tenant, payment_id=payment_id):
                    try:
                        reply = await behaviour(request, context)
                        failed = False
                        return reply
                    finally:
                        _record(name, _code(context, failed), started)

            return grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.unary_stream is not None:
            stream_behaviour: Any = handler.unary_stream

            async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
                started, failed = time.perf_counter(), True
                _annotate(tenant, "")
                with logs.bound(request_id=request_id, tenant=tenant):
                    try:
                        async for message in stream_behaviour(request, context):
                            yield message
                        failed = False
                    finally:
                        _record(name, _code(context, failed), started)

            return grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        return handler


def _annotate(tenant: str, payment_id: str) -> None:
    """Ids only on the gRPC server span (a no-op when tracing is off); never PII."""
    span = trace.get_current_span()
    if span.is_recording():
        if tenant:
            span.set_attribute("malipo.tenant", tenant)
        if payment_id:
            span.set_attribute("malipo.payment_id", payment_id)


def _record(method: str, code: str, started: float) -> None:
    RPCS.labels(method, code).inc()
    RPC_LATENCY.labels(method, code).observe(time.perf_counter() - started)
