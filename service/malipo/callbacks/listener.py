"""The callback listener: POST /callbacks/{provider}/{account}, GET /healthz, GET /metrics
(unless metrics have a listener of their own, MALIPO_METRICS_LISTEN)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from malipo import tracing
from malipo.app.connector import CallbackOutcome, InboundCallback
from malipo.app.directory import ConnectorDirectory
from malipo.callbacks.processing import CallbackProcessor
from malipo.metrics import CALLBACKS

log = logging.getLogger("malipo.callbacks")
_TRACER = trace.get_tracer("malipo.callbacks")

HealthCheck = Callable[[], Awaitable[bool]]


def build_app(connectors: ConnectorDirectory, processor: CallbackProcessor, *,
              max_body: int, healthy: HealthCheck,
              serve_metrics: bool = True) -> web.Application:
    app = web.Application(client_max_size=max_body)

    async def callback(request: web.Request) -> web.Response:
        provider, account = request.match_info["provider"], request.match_info["account"]
        if not tracing.enabled():
            return await handle(request, provider, account)
        # A span per delivery (with malipo.tracing on): ids and outcome, no body.
        with _TRACER.start_as_current_span(f"callback {provider}", kind=SpanKind.SERVER,
                                           attributes={"malipo.provider": provider,
                                                       "malipo.account": account}) as span:
            response = await handle(request, provider, account)
            span.set_attribute("http.response.status_code", response.status)
            return response

    async def handle(request: web.Request, provider: str, account: str) -> web.Response:
        connector = connectors.get(provider, account)
        if connector is None:
            return web.Response(status=404, text="unknown provider account")
        if request.content_length is not None and request.content_length > max_body:
            CALLBACKS.labels(provider, "TOO_LARGE").inc()
            return web.Response(status=413, text="body too large")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            CALLBACKS.labels(provider, "TOO_LARGE").inc()
            return web.Response(status=413, text="body too large")
        inbound = InboundCallback(
            provider=provider, account=account,
            headers={k.lower(): v for k, v in request.headers.items()}, body=body,
            query=dict(request.query), remote=request.remote or "",
            received_at=datetime.now(UTC),
        )
        try:
            outcome = await processor.handle(connector, inbound)
        except Exception:
            # Journaled already (or the database is down): a 5xx makes the provider retry.
            log.exception("callback processing failed for %s/%s", provider, account)
            CALLBACKS.labels(provider, "ERROR").inc()
            return web.Response(status=503, text="try again")
        CALLBACKS.labels(provider, outcome.value).inc()
        answer = connector.callback_answer(outcome)
        return web.Response(status=answer.status, body=answer.body,
                            content_type=answer.content_type.split(";")[0])

    async def healthz(_request: web.Request) -> web.Response:
        ok = await healthy()
        return web.json_response({"status": "ok" if ok else "unavailable"},
                                 status=200 if ok else 503)

    app.router.add_post("/callbacks/{provider}/{account}", callback)
    app.router.add_get("/healthz", healthz)
    if serve_metrics:
        app.router.add_get("/metrics", _metrics)
    return app


def metrics_app() -> web.Application:
    """GET /metrics alone, for a listener that is not the public callback port."""
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    return app


async def _metrics(_request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


__all__ = ["CallbackOutcome", "build_app", "metrics_app"]
