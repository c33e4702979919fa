# pyright: basic
"""Operations options a platform team sets on day one: /metrics on its own listener with a
build_info gauge, bounded gRPC connection age, WatchStatus cancellations counted as such, and
traces exported over OTLP http/protobuf."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import grpc
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from malipo import tracing
from malipo.metrics import version
from malipo.payments.v1 import payment_service_pb2
from tests.e2e.test_operations import sample
from tests.harness import auth, create_request, running, settings_for


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.text()


async def test_metrics_on_their_own_listener_not_the_callback_port(database_url: str) -> None:
    async with running(settings_for(database_url, metrics_listen="127.0.0.1:0")) as service:
        assert service.app.metrics_address
        status, text = await get(f"http://{service.app.metrics_address}/metrics")
        assert status == 200
        assert sample(text, "malipo_build_info", version=version(),
                      python=__import__("platform").python_version(),
                      grpc=grpc.__version__) == 1.0
        status, _ = await get(f"{service.callback_base}/metrics")
        assert status == 404
        status, _ = await get(f"{service.callback_base}/healthz")
        assert status == 200


async def test_a_cancelled_watch_is_counted_cancelled(database_url: str) -> None:
    async with running(settings_for(database_url)) as service:
        async def cancelled() -> float:
            _, text = await get(f"{service.callback_base}/metrics")
            return sample(text, "malipo_rpc_total", method="WatchStatus", code="CANCELLED")

        before = await cancelled()
        created = await service.stub.CreatePayment(create_request(f"watch-{uuid.uuid4()}"),
                                                   metadata=auth())
        stream = service.stub.WatchStatus(payment_service_pb2.WatchStatusRequest(
            after_sequence=0, filter={"payment_id": created.payment.id}), metadata=auth())
        async for message in stream:
            if message.HasField("event"):
                break
        stream.cancel()
        async with asyncio.timeout(10):
            while await cancelled() == before:
                await asyncio.sleep(0.05)
        _, text = await get(f"{service.callback_base}/metrics")
        assert sample(text, "malipo_rpc_total", method="WatchStatus", code="UNKNOWN") == 0.0


async def test_heartbeats_and_events_share_a_stream(database_url: str) -> None:
    """Events go out as bytes serialised once for every stream, heartbeats as messages
    (api/presend.py): a client reads both, in order, from one stream."""
    async with running(settings_for(database_url, heartbeat_s=0.2)) as service:
        created = await service.stub.CreatePayment(create_request(f"beat-{uuid.uuid4()}"),
                                                   metadata=auth())
        stream = service.stub.WatchStatus(payment_service_pb2.WatchStatusRequest(
            after_sequence=0, filter={"payment_id": created.payment.id}), metadata=auth())
        kinds: list[str] = []
        last_event = 0
        async with asyncio.timeout(20):
            async for message in stream:
                kind = message.WhichOneof("message")
                kinds.append(kind)
                if kind == "event":
                    assert message.event.payment_id == created.payment.id
                    assert message.event.amount.amount_minor == 1000
                    last_event = message.event.sequence
                elif "event" in kinds:
                    assert message.heartbeat.sequence >= last_event
                    assert message.heartbeat.HasField("sent_at")
                    break
        stream.cancel()
        assert kinds[0] == "event" and kinds[-1] == "heartbeat"


async def test_connection_age_ends_long_streams_so_clients_rebalance(database_url: str) -> None:
    """After max age plus grace the server closes the connection: a stream ends UNAVAILABLE
    (the client resumes from its cursor, possibly on another pod), and a new call works."""
    settings = settings_for(database_url, grpc_max_connection_age_s=0.5,
                            grpc_max_connection_age_grace_s=0.5, heartbeat_s=0.2)
    async with running(settings) as service:
        stream = service.stub.WatchStatus(payment_service_pb2.WatchStatusRequest(
            after_sequence=0), metadata=auth())
        async def drain() -> None:
            async for _message in stream:
                pass

        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await asyncio.wait_for(drain(), 30)
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
        reply = await service.stub.ListPayments(
            payment_service_pb2.ListPaymentsRequest(page_size=1), metadata=auth(), timeout=10)
        assert reply is not None


async def test_traces_export_over_otlp_http_protobuf(monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[ExportTraceServiceRequest] = []

    async def traces(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        received.append(message)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    try:
        def export_one_span() -> None:
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(tracing.otlp_exporter()))
            with provider.get_tracer("test").start_as_current_span("otlp-http-probe"):
                pass
            provider.shutdown()

        await asyncio.to_thread(export_one_span)  # the exporter's HTTP call blocks
        names = [span.name for r in received for rs in r.resource_spans
                 for ss in rs.scope_spans for span in ss.spans]
        assert names == ["otlp-http-probe"]
    finally:
        await runner.cleanup()


def test_an_unsupported_otlp_protocol_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ValueError, match="http/json"):
        tracing.otlp_protocol()
