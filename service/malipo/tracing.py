# ruff: noqa: PLC0415 - OpenTelemetry is imported only when tracing is switched on
"""OpenTelemetry traces, on only when OTEL_EXPORTER_OTLP_ENDPOINT is set (the standard OTel
variables configure the exporter: headers, OTEL_SERVICE_NAME, sampling, and
OTEL_EXPORTER_OTLP_PROTOCOL: `grpc`, the default, or `http/protobuf`; `http/json` is refused
at start because no maintained Python exporter speaks it).

What is traced: every gRPC call (server spans, with `malipo.tenant` and `malipo.payment_id`
added by api/edge.py), every outbound provider HTTP call (aiohttp client spans; the
URL's query string is dropped because some providers put phone numbers there), every asyncpg
query (statement text only: parameters are never captured), and each provider callback (a
span opened in callbacks/listener.py with provider, account and outcome; the aiohttp server
instrumentation is not used because it records the raw query string). No span carries a
phone number, an account number, a body or a header.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import yarl

Shutdown = Callable[[], None]
_PROTOCOLS = ("grpc", "http/protobuf")


class _Switch:
    on = False  # configure() sets it, its shutdown clears it


def enabled() -> bool:
    """Whether configure() switched tracing on: code that opens its own spans skips even the
    no-op span otherwise (~8 us each, 1-2% of a callback's server time)."""
    return _Switch.on


def _no_query(url: yarl.URL) -> str:
    return str(url.with_query(None).with_fragment(None))


def otlp_protocol() -> str:
    """The OTLP protocol the standard variables ask for: grpc (default) or http/protobuf."""
    protocol = (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc").strip()
    if protocol not in _PROTOCOLS:
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL {protocol!r} is not supported; "
                         f"use one of {', '.join(_PROTOCOLS)}")
    return protocol


def otlp_exporter() -> Any:
    """The OTLP span exporter for the protocol asked for (endpoint from the standard variables)."""
    if otlp_protocol() == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        return HttpExporter()
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def configure(*, exporter: Any = None, set_global: bool = True) -> Shutdown | None:
    """Instrument gRPC server, aiohttp client and asyncpg; return a shutdown function, or
    None when tracing is off. Call before the gRPC server and connectors are built.
    `exporter` replaces the OTLP exporter (tests use an in-memory one)."""
    if exporter is None and not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return None
    from opentelemetry import trace
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "malipo")})
    provider = TracerProvider(resource=resource)
    if exporter is None:
        provider.add_span_processor(BatchSpanProcessor(otlp_exporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    if set_global:
        trace.set_tracer_provider(provider)
    instrumentors: list[Any] = [GrpcAioInstrumentorServer(), AioHttpClientInstrumentor(),
                                AsyncPGInstrumentor()]
    for instrumentor in instrumentors:
        options: dict[str, Any] = {"tracer_provider": provider}
        if isinstance(instrumentor, AioHttpClientInstrumentor):
            options["url_filter"] = _no_query
        instrumentor.instrument(**options)

    def shutdown() -> None:
        _Switch.on = False
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
        provider.shutdown()

    _Switch.on = True
    return shutdown
