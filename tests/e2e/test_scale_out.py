# pyright: basic
"""Scale-out proof: three `python -m malipo.cli serve` processes on one PostgreSQL.

The provider is the faithful gateway fake, in this test process, so every provider request of
every replica lands in one place and can be counted. Callbacks go through a proxy that hands
each one to a random replica; creates, retries and reads go to random replicas too. We show:
no payment lost or doubled, one provider create per payment (even for those whose create
timed out, and for idempotent retries sent to another replica), reconciler polls spread over
replicas with never two at once for one payment, and every replica's WatchStatus stream seeing
every event in commit order.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import grpc
import pytest
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from malipo.bootstrap import SERVICE_NAME
from malipo.payments.v1 import money_pb2, payment_pb2, payment_service_pb2
from malipo.payments.v1.payment_service_pb2_grpc import PaymentServiceStub
from malipo.sandbox.fake_provider import CallbackMode, ResponseFault
from malipo.sandbox.gateway import GatewayFake, Outcome
from tests.harness import TENANT_KEYS, auth, free_port

pb = payment_service_pb2
REPLICAS = 3
PAYMENTS = 300
ROOT = Path(__file__).resolve().parents[2]
FINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


@dataclass
class Replica:
    index: int
    grpc_address: str
    http_address: str
    process: subprocess.Popen[bytes]
    log: Path
    channel: grpc.aio.Channel | None = None

    @property
    def stub(self) -> Any:
        assert self.channel is not None
        return PaymentServiceStub(self.channel)


@dataclass
class StatusCalls:
    """Start and end of every status request the fake served, per order."""

    spans: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))

    def middleware(self) -> Any:
        @web.middleware
        async def timed(request: web.Request,
                        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                        ) -> web.StreamResponse:
            if not request.path.endswith("/status"):
                return await handler(request)
            started = time.monotonic()
            order = str(json.loads(await request.read()).get("order_id", ""))
            try:
                return await handler(request)
            finally:
                self.spans[order].append((started, time.monotonic()))

        return timed


@pytest.fixture(scope="module")
async def fake() -> AsyncIterator[tuple[GatewayFake, StatusCalls]]:
    server = GatewayFake(complete_after_s=0.1)
    calls = StatusCalls()
    server.app.middlewares.insert(0, calls.middleware())
    await server.start()
    yield server, calls
    await server.stop()


@pytest.fixture(scope="module")
async def proxy(fake: tuple[GatewayFake, StatusCalls]) -> AsyncIterator[dict[str, Any]]:
    """Public callback address: forwards each callback to a random replica."""
    state: dict[str, Any] = {"targets": [], "hits": Counter()}
    session = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.Response:
        index = random.randrange(len(state["targets"]))
        state["hits"][index] += 1
        async with session.post(f"http://{state['targets'][index]}{request.path_qs}",
                                data=await request.read(),
                                headers={k: v for k, v in request.headers.items()
                                         if k.lower() not in ("host", "content-length")}
                                ) as resp:
            return web.Response(status=resp.status, body=await resp.read(),
                                content_type=resp.content_type)

    app = web.Application()
    app.router.add_post("/callbacks/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield state
    await runner.cleanup()
    await session.close()


@pytest.fixture(scope="module")
async def replicas(database_url: str, fake: tuple[GatewayFake, StatusCalls],
                   proxy: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
                   ) -> AsyncIterator[list[Replica]]:
    gateway, _ = fake
    folder = tmp_path_factory.mktemp("scale")
    config = folder / "malipo.toml"
    config.write_text(f"""
public_callback_base = "{proxy['url']}"

[[accounts]]
provider = "gateway"
name = "default"
[accounts.settings]
base_url = "{gateway.base_url}"
public_id = "{gateway.public_id}"
merchant_id = "{gateway.merchant_id}"
secret_key = "{gateway.secret_key}"
timeout_s = "1"

[policies.gateway]
start_after_s = 0.8
interval_s = 0.4
backoff = 1.0
max_interval_s = 0.5
submit_grace_s = 2.0
submit_give_up_s = 60.0
""", encoding="utf-8")
    started: list[Replica] = []
    for i in range(REPLICAS):
        grpc_address, http_address = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        log = folder / f"replica-{i}.log"
        env = {**os.environ, "DATABASE_URL": database_url, "MALIPO_CONFIG": str(config),
               "MALIPO_API_KEYS": ",".join(f"{t}={k}" for t, k in TENANT_KEYS.items()),
               "MALIPO_GRPC_LISTEN": grpc_address, "MALIPO_HTTP_LISTEN": http_address,
               "MALIPO_DATA_DIR": str(folder / f"data-{i}"), "MALIPO_LOG_FORMAT": "json",
               "MALIPO_RECONCILE_INTERVAL_S": "0.1", "MALIPO_HEARTBEAT_S": "1",
               "MALIPO_RATE_LIMIT_PER_S": "0", "MALIPO_DB_POOL_MAX": "8",
               "PYTHONPATH": str(ROOT)}
        started.append(Replica(i, grpc_address, http_address, spawn(env, log, folder), log))
    proxy["targets"] = [r.http_address for r in started]
    try:
        for replica in started:
            replica.channel = grpc.aio.insecure_channel(replica.grpc_address)
            await wait_ready(replica)
        yield started
    finally:
        for replica in started:
            if replica.channel is not None:
                await replica.channel.close()
            replica.process.send_signal(signal.SIGTERM)
        for replica in started:
            try:
                await asyncio.to_thread(replica.process.wait, 15)
            except subprocess.TimeoutExpired:
                replica.process.kill()


def spawn(env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "malipo.cli", "serve"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, cwd=cwd)


async def wait_ready(replica: Replica) -> None:
    assert replica.channel is not None
    health: Any = health_pb2_grpc.HealthStub(replica.channel)
    deadline = time.monotonic() + 45
    while True:
        if replica.process.poll() is not None:
            pytest.fail(f"replica {replica.index} exited:\n{replica.log.read_text()[-3000:]}")
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME),
                                       timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"replica {replica.index} never ready:\n{replica.log.read_text()[-3000:]}")
        await asyncio.sleep(0.1)


async def watch(replica: Replica, seen: list[tuple[int, str, str]], stop: asyncio.Event) -> None:
    stream = replica.stub.WatchStatus(pb.WatchStatusRequest(after_sequence=0),
                                      metadata=auth())
    async for message in stream:
        if message.HasField("event"):
            e = message.event
            seen.append((e.sequence, e.payment_id,
                         payment_pb2.Status.Name(e.new_status).removeprefix("STATUS_")))
        if stop.is_set():
            stream.cancel()
            return


def phone_for(gateway: GatewayFake, outcome: Outcome) -> str:
    national = f"7{uuid.uuid4().int % 10**8:08d}"
    gateway.scenarios["254" + national] = outcome
    return "+254" + national


async def metric(replica: Replica, name: str, **labels: str) -> float:
    async with aiohttp.ClientSession() as session, session.get(
            f"http://{replica.http_address}/metrics") as resp:
        text = await resp.text()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


async def test_three_replicas_one_database(replicas: list[Replica],
                                           fake: tuple[GatewayFake, StatusCalls],
                                           proxy: dict[str, Any], database_url: str) -> None:
    gateway, status_calls = fake
    started = time.monotonic()
    stop = asyncio.Event()
    seen: list[list[tuple[int, str, str]]] = [[] for _ in replicas]
    watchers = [asyncio.create_task(watch(r, seen[i], stop)) for i, r in enumerate(replicas)]

    # Outcomes: most settle by callback; some fail; some callbacks are lost (only a poll
    # finds them); some creates time out at the provider after it took the order (UNKNOWN).
    outcomes = ([Outcome.SUCCESS] * 200 + [Outcome.FAIL] * 60 + [Outcome.CANCEL] * 40)
    random.shuffle(outcomes)
    gateway.chaos.next_callback, gateway.chaos.callback_count = CallbackMode.NEVER, 40
    gateway.chaos.hang_seconds = 1.5
    gateway.chaos.next_response, gateway.chaos.response_count = ResponseFault.TIMEOUT, 15

    requests = [
        pb.CreatePaymentRequest(
            idempotency_key=f"scale-{n}", provider="gateway", channel="2390",
            amount=money_pb2.Money(amount_minor=10_000 + n, currency="KES"),
            customer=payment_pb2.Customer(phone_number=phone_for(gateway, outcome)))
        for n, outcome in enumerate(outcomes)
    ]
    limit = asyncio.Semaphore(30)
    created_by: dict[str, set[str]] = defaultdict(set)

    async def create(request: pb.CreatePaymentRequest, replica: Replica) -> None:
        async with limit:
            reply = await replica.stub.CreatePayment(request, metadata=auth(), timeout=20)
        created_by[request.idempotency_key].add(reply.payment.id)

    await asyncio.gather(*(create(r, random.choice(replicas)) for r in requests))
    # Idempotent retries of 60 of them, each to a replica chosen at random.
    await asyncio.gather(*(create(r, random.choice(replicas)) for r in random.sample(requests,
                                                                                     60)))
    assert all(len(ids) == 1 for ids in created_by.values())
    assert len(created_by) == PAYMENTS
    payment_ids = {next(iter(ids)) for ids in created_by.values()}

    db = await asyncpg.connect(database_url)
    try:
        async with asyncio.timeout(40):
            while True:
                rows = await db.fetch("SELECT id, status FROM payments")
                # Final rows, and their events relayed into the log (the outbox drained).
                if len(rows) == PAYMENTS and all(r["status"] in FINAL for r in rows) and (
                        await db.fetchval("SELECT count(*) FROM outbox") == 0):
                    break
                await asyncio.sleep(0.2)
        assert {r["id"] for r in rows} == payment_ids  # none lost, none doubled
        head = await db.fetchval("SELECT max(sequence) FROM events")
        async with asyncio.timeout(10):
            while any(not s or s[-1][0] < head for s in seen):
                await asyncio.sleep(0.05)
        events = [(r["sequence"], r["payment_id"], r["new_status"]) for r in await db.fetch(
            "SELECT sequence, payment_id, new_status FROM events ORDER BY sequence")]
        finals = Counter(r["payment_id"] for r in await db.fetch(
            "SELECT payment_id FROM events WHERE new_status = ANY($1)", list(FINAL)))
        statuses = Counter(r["status"] for r in rows)
    finally:
        await db.close()
    stop.set()
    for task in watchers:
        task.cancel()

    # Each payment settled exactly once, to the status its scenario says.
    assert set(finals) == payment_ids and set(finals.values()) == {1}
    assert statuses == {"SUCCEEDED": 200, "FAILED": 60, "CANCELLED": 40}

    # Every watcher, on every replica, saw every event in commit order, nothing twice.
    assert [e[0] for e in events] == list(range(1, len(events) + 1))
    for got in seen:
        assert [e for e in got if e[0] <= head] == events

    # One provider create per payment, whatever the replica, retry or timeout.
    creates = Counter(json.loads(c.body)["order_id"] for c in gateway.calls_to("/payment_c2b"))
    assert set(creates) == payment_ids and set(creates.values()) == {1}

    # Lost callbacks and timed-out creates were found by polls; polls never overlapped for
    # one payment (the claim), and several replicas did them.
    assert gateway.chaos.callback_count == 0 and gateway.chaos.response_count == 0
    polled = {order for order, spans in status_calls.spans.items() if spans}
    assert len(polled) >= 40
    for spans in status_calls.spans.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    per_replica = [await metric(r, "malipo_provider_call_duration_seconds_count",
                                provider="gateway", operation="status") for r in replicas]
    assert sum(per_replica) == sum(len(s) for s in status_calls.spans.values())
    assert sum(1 for n in per_replica if n > 0) >= 2, per_replica
    assert all(proxy["hits"][i] > 0 for i in range(REPLICAS)), proxy["hits"]

    # Logs stayed masked in all three processes.
    for replica in replicas:
        text = replica.log.read_text()
        assert gateway.secret_key not in text and "key-acme" not in text
    elapsed = time.monotonic() - started
    print(f"scale-out: {PAYMENTS} payments, {len(events)} events, {len(polled)} payments "
          f"polled, status polls per replica {per_replica}, callbacks per replica "
          f"{[proxy['hits'][i] for i in range(REPLICAS)]}, {elapsed:.1f}s")
    assert elapsed < 60
