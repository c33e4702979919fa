# pyright: basic
"""Operations surface of a running server: /metrics and grpc.health.v1 readiness."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from malipo.bootstrap import SERVICE_NAME
from malipo.metrics import Sampler
from malipo.payments.v1 import payment_pb2, payment_service_pb2
from malipo.reconciler.loop import Breaker
from tests.e2e.test_payments_api import wait_status
from tests.harness import Running, auth, create_request

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def scrape(service: Running) -> str:
    async with aiohttp.ClientSession() as session, session.get(
            f"{service.callback_base}/metrics") as resp:
        assert resp.status == 200
        return await resp.text()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample, or 0.0 when the series does not exist (yet)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return 0.0


async def test_metrics_count_rpcs_provider_callbacks_and_backlog(malipo: Running) -> None:
    before = await scrape(malipo)
    created = await malipo.stub.CreatePayment(create_request(f"ops-{uuid.uuid4()}"),
                                              metadata=auth())
    await wait_status(malipo, created.payment.id, payment_pb2.STATUS_SUCCEEDED)
    missing = payment_service_pb2.GetPaymentRequest(payment_id="pay_does_not_exist")
    with pytest.raises(grpc.aio.AioRpcError, match="NOT_FOUND"):
        await malipo.stub.GetPayment(missing, metadata=auth())
    app = malipo.app
    assert app.reconciler is not None and app.hub is not None and app.pool is not None
    app.reconciler.breakers[("simulator", "probe")] = Breaker(state="open")
    breakers = app.reconciler.breakers
    await Sampler(app.reconciler.leases, breakers=lambda: breakers,
                  hub_stats=app.hub.stats).sample()
    for _ in range(50):  # the simulator's callback may land after the status we waited for
        after = await scrape(malipo)
        if sum(sample(after, "malipo_callbacks_total", provider="simulator", outcome=o)
               for o in ("APPLIED", "IGNORED", "DUPLICATE")) > sum(
                   sample(before, "malipo_callbacks_total", provider="simulator", outcome=o)
                   for o in ("APPLIED", "IGNORED", "DUPLICATE")):
            break
        await asyncio.sleep(0.1)

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("malipo_rpc_total", method="CreatePayment", code="OK") >= 1
    assert grew("malipo_rpc_total", method="GetPayment", code="NOT_FOUND") >= 1
    assert sample(after, "malipo_rpc_duration_seconds_count", method="CreatePayment",
                  code="OK") >= 1
    assert sum(grew("malipo_callbacks_total", provider="simulator", outcome=o)
               for o in ("APPLIED", "IGNORED", "DUPLICATE")) >= 1
    assert sample(after, "malipo_reconciler_backlog", state="due") >= 0
    assert "\nmalipo_unsettled_oldest_age_seconds " in after
    assert sample(after, "malipo_stream_subscribers", mode="live") >= 0
    assert "\nmalipo_stream_event_lag " in after
    assert "\nmalipo_reconciler_oldest_due_seconds " in after
    assert sample(after, "malipo_circuit_breaker_state", provider="simulator",
                  account="probe") == 2


async def test_readiness_follows_the_database_and_liveness_stays(malipo: Running) -> None:
    stub: Any = health_pb2_grpc.HealthStub(malipo.channel)

    async def status(service: str) -> int:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        return reply.status

    assert await status(SERVICE_NAME) == SERVING
    assert await status("") == SERVING
    app = malipo.app
    real = app._db_healthy

    async def down() -> bool:
        return False

    app._db_healthy = down  # type: ignore[method-assign]
    watcher = asyncio.create_task(app._watch_health(0.05))
    try:
        await asyncio.sleep(0.2)
        assert await status(SERVICE_NAME) == NOT_SERVING
        assert await status("") == SERVING
        app._db_healthy = real  # type: ignore[method-assign]
        await asyncio.sleep(0.2)
        assert await status(SERVICE_NAME) == SERVING
    finally:
        app._db_healthy = real  # type: ignore[method-assign]
        watcher.cancel()
