"""WatchStatus fan-out benchmark: N streams on one server process, a steady rate of transitions.

    .venv/bin/python -m tests.bench.stream_fanout --subscribers 1000 10000     # `make bench-stream`
    .venv/bin/python -m tests.bench.stream_fanout --in-process --subscribers 10000

gRPC mode (the default) measures what a client sees: `malipo serve` runs as a subprocess on a
fresh database (tests/bench/servers.py), --clients processes (spawned, uvloop) open the
streams over several grpc.aio channels each (--streams-per-channel, so no one HTTP/2
connection carries thousands of streams), and a writer process commits the transitions.
Latency is the client's receipt time minus the event's occurred_at, which the writer stamps
just before its transaction (one clock: everything runs on this machine); it includes the
commit, the relay, the hub, gRPC and the client's own event loop. Server RSS (peak, and per
stream: the growth from idle to every stream open) and CPU% come from psutil on the server's
pid; CPU per delivered message (us/msg) is the figure least moved by other load.

--in-process keeps the older diagnosis of the hub alone: relay, hub and the streams (async
generators of `EventHub.subscribe`, no gRPC) run in this process.

Which streams an event reaches: --fanout F (default 10) tenant-wide streams per event, i.e.
N/F tenants with F streams each, and events spread over the same tenants. Ten is a service
back-end with a few replicas and a dashboard or two watching a tenant: a realistic order of
magnitude, and it keeps the delivered rate (F x the transition rate) the same for 1k and
10k streams, so the two counts compare the cost of holding streams rather than of sending
ten times more messages. --payment-watchers adds streams that each follow one payment (the
common client use), which cost nothing per unrelated event.

The writer inserts outbox rows, one transaction per transition, and nudges the relay the way
a non-leader server process does (EventRelay.nudge), rather than driving real transitions
through the API: on this 2-core machine signed callbacks top out at a few hundred per second
(README, Performance), far from the 1,000/s asked, and would measure the callback path
instead of the fan-out. The relay, the hub and the streams are the server's own.

Prints one line per subscriber count (--json: one JSON object instead). Uses DATABASE_URL if
set, else an embedded PostgreSQL of its own (--pg-dir).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import re
import secrets
import sys
import time
import urllib.request
import uuid
from array import array
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import psutil

from tests.bench import servers

# Latency histogram: 0.25 ms buckets up to 1 s, then 10 ms buckets up to 120 s (an
# overloaded run still reports its real p50 rather than a cap).
FINE_MS, FINE = 0.25, 4000
COARSE_MS, COARSE = 10.0, 11_900
BUCKETS = FINE + COARSE


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """On uvloop, like the server and the load generator."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency on Linux
        return asyncio.run(coro)
    return uvloop.run(coro)


def server_dsn(data_dir: Path) -> str:
    external = os.environ.get("DATABASE_URL")
    if external:
        return external
    from malipo.store.embedded import start_embedded
    return start_embedded(data_dir)


def database_name(url: str) -> str:
    # The path, not the last "/": the embedded server's DSN ends in ?host=/its/socket/dir.
    return urlsplit(url).path.lstrip("/")


async def fresh_database(dsn: str, *, async_commit: bool, migrated: bool) -> str:
    """A new database; the server migrates its own, the in-process mode needs it done."""
    url = await servers.create_database(dsn)
    conn = await asyncpg.connect(url)
    try:
        if migrated:
            from malipo.store.migrations import migrate
            await migrate(conn)
        if async_commit:  # isolates fan-out cost from this disk's fsync latency
            await conn.execute(
                f'ALTER DATABASE "{database_name(url)}" SET synchronous_commit = off')
    finally:
        await conn.close()
    return url


# -- latency histogram ---------------------------------------------------------------------

def new_histogram() -> array[int]:
    return array("q", bytes(8 * BUCKETS))


def record(histogram: array[int], ms: float) -> None:
    if ms < FINE * FINE_MS:
        histogram[max(0, int(ms / FINE_MS))] += 1
    else:
        histogram[min(FINE + int((ms - FINE * FINE_MS) / COARSE_MS), BUCKETS - 1)] += 1


def bucket_top(i: int) -> float:
    """Upper bound of bucket i, in ms."""
    return (i + 1) * FINE_MS if i < FINE else FINE * FINE_MS + (i - FINE + 1) * COARSE_MS


def percentile(histogram: array[int] | list[int], q: float) -> float:
    total = sum(histogram)
    if not total:
        return float("nan")
    target, seen = q * total, 0
    for i, count in enumerate(histogram):
        seen += count
        if seen >= target:
            return round(bucket_top(i), 2)
    return float("inf")


def latency(histogram: array[int] | list[int]) -> dict[str, float]:
    return {"p50": percentile(histogram, 0.50), "p99": percentile(histogram, 0.99),
            "max": percentile(histogram, 1.0)}


# -- the writer process ---------------------------------------------------------------------

# What a simulator callback leaves on its events (StatusEvent.provider_payload): real events
# carry one, and it is part of what every stream serialises.
PROVIDER_PAYLOAD = {"event_id": "SIM-0000:SUCCEEDED", "status": "SUCCEEDED",
                    "provider_status": "success", "reference": "SIM-0000",
                    "amount_minor": 1000, "currency": "XOF", "failure_reason": ""}


def writer_main(url: str, rate: int, seconds: float, tenants: int, payments: int,
                start_at: float) -> None:
    run_async(_write(url, rate, seconds, tenants, payments, start_at))


# One for the nudges, the rest committing side by side (the pool it replaced held up to 30):
# at 1,000 rows/s each has 23 ms per commit before the writer falls behind its rate.
WRITER_CONNECTIONS = 24


async def _write(url: str, rate: int, seconds: float, tenants: int, payments: int,
                 start_at: float) -> None:
    """`rate` outbox rows a second, one commit each, in ticks of 10 ms.

    Lean on purpose: the writer shares the two cores with the server it loads, while the
    floor's producer is a loop inside the floor. Connections of its own, each committing
    the rows handed to it in turn (no pool, no task per row), the statement prepared once
    and the payload sent as JSON text: 13-18% of a core at 1,000 rows/s, where a task per
    row on a pool took 24-27% (`writer_cpu_percent` in results.json)."""
    connections = [await asyncpg.connect(url) for _ in range(WRITER_CONNECTIONS)]
    due: asyncio.Queue[int | None] = asyncio.Queue()
    # Like a server process that does not lead the relay (EventRelay.nudge): after its
    # commits, one NOTIFY per burst, sent outside the writing transactions.
    nudge_due = asyncio.Event()
    dumps = json.JSONEncoder(separators=(",", ":")).encode

    async def nudge_leader(conn: asyncpg.Connection) -> None:
        while True:
            await nudge_due.wait()
            nudge_due.clear()
            await conn.execute("SELECT pg_notify('malipo_outbox', '')")

    async def commit_rows(conn: asyncpg.Connection) -> None:
        insert = await conn.prepare("INSERT INTO outbox (payload) VALUES ($1::text::jsonb)")
        while (i := await due.get()) is not None:
            payment = i % payments
            await insert.fetch(dumps({
                "event_id": str(uuid.uuid4()), "tenant": f"t{payment % tenants}",
                "payment_id": f"p{payment}", "direction": "COLLECTION", "provider": "simulator",
                "account": "default", "old_status": "PROCESSING", "new_status": "SUCCEEDED",
                "provider_status": "success", "provider_reference": f"SIM-{payment}",
                "amount_minor": 1000, "currency": "XOF", "reason": "", "message": "",
                "fulfilment": {}, "needs_review": False, "actor": "bench",
                "occurred_at": datetime.now(UTC).isoformat(),
                "provider_payload": PROVIDER_PAYLOAD,
            }))
            nudge_due.set()

    tick = 0.01
    per_tick = max(1, round(rate * tick))
    await asyncio.sleep(max(0.0, start_at - time.time()))
    nudging = asyncio.create_task(nudge_leader(connections[0]))
    committing = [asyncio.create_task(commit_rows(c)) for c in connections[1:]]
    n = 0
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        for _ in range(per_tick):
            due.put_nowait(n)
            n += 1
        await asyncio.sleep(max(0.0, (n / per_tick) * tick - elapsed))
    for _ in committing:
        due.put_nowait(None)
    await asyncio.gather(*committing)
    nudging.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await nudging
    for conn in connections:
        await conn.close()


def start_writer(url: str, o: Options, tenants: int, payments: int,
                 start_at: float) -> BaseProcess:
    writer = multiprocessing.get_context("spawn").Process(
        target=writer_main,
        args=(url, o.rate, o.warmup + o.seconds + 0.5, tenants, payments, start_at))
    writer.start()
    return writer


async def log_latency(url: str, since: float, until: float) -> dict[str, Any]:
    """Events committed in the window, and how long commit + relay took (writer's clock ->
    the relay's statement_timestamp): the part of the latency before the hub."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, "
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99 FROM ("
            "SELECT extract(epoch FROM recorded_at - occurred_at) * 1000 AS ms FROM events "
            "WHERE occurred_at >= to_timestamp($1) AND occurred_at < to_timestamp($2)) t",
            since, until)
        per_key = await conn.fetch(
            "SELECT tenant, payment_id, count(*) AS n FROM events "
            "WHERE occurred_at >= to_timestamp($1) AND occurred_at < to_timestamp($2) "
            "GROUP BY 1, 2", since, until)
    finally:
        await conn.close()
    return {"events": int(row["n"]),
            "p50": round(float(row["p50"] or math.nan), 2),
            "p99": round(float(row["p99"] or math.nan), 2),
            "per_key": [(r["tenant"], r["payment_id"], int(r["n"])) for r in per_key]}


# -- options and streams --------------------------------------------------------------------

@dataclass
class Options:
    fanout: int
    payment_watchers: int
    rate: int
    warmup: float
    seconds: float
    drain: float
    clients: int
    streams_per_channel: int
    open_rate: float
    relay_poll: float
    async_commit: bool
    open_timeout: float


@dataclass(frozen=True)
class Stream:
    tenant: str
    payment_id: str = ""  # empty: every event of the tenant


def plan(subscribers: int, o: Options) -> tuple[list[Stream], int, int]:
    """The streams to open, the tenant count and the payment count the writer cycles over."""
    tenants = max(1, subscribers // max(1, o.fanout))
    payments = max(tenants * 10, o.payment_watchers)
    streams = [Stream(f"t{i % tenants}") for i in range(subscribers)]
    streams += [Stream(f"t{p % tenants}", f"p{p}") for p in range(o.payment_watchers)]
    return streams, tenants, payments


def expected_deliveries(streams: list[Stream], per_key: list[tuple[str, str, int]]) -> int:
    """How many messages the streams should get for these events (tenant, payment, count)."""
    by_tenant = Counter(s.tenant for s in streams if not s.payment_id)
    by_payment = Counter((s.tenant, s.payment_id) for s in streams if s.payment_id)
    return sum(n * (by_tenant[t] + by_payment[(t, p)]) for t, p, n in per_key)


# -- gRPC mode: the client processes --------------------------------------------------------

@dataclass
class ClientJob:
    target: str
    keys: dict[str, str]  # tenant -> API key
    streams: list[Stream]
    channels: int
    open_rate: float  # streams opened per second by this process


@dataclass
class ClientResult:
    histogram: list[int]
    delivered: int  # events in the window received
    received: int  # every event received, window or not
    heartbeats: int
    reopened: int  # streams refused while opening and opened again
    errors: dict[str, int] = field(default_factory=dict[str, int])


def client_main(job: ClientJob, conn: Connection) -> None:
    run_async(_client(job, conn))


async def _client(job: ClientJob, conn: Connection) -> None:
    import grpc

    from malipo.payments.v1 import events_pb2
    from malipo.payments.v1 import payment_service_pb2 as pb
    from malipo.payments.v1.payment_service_pb2_grpc import PaymentServiceStub

    loop = asyncio.get_running_loop()
    # A local subchannel pool per channel: without it, channels to the same target with the
    # same options share one connection, and one HTTP/2 connection would carry them all.
    channels = [grpc.aio.insecure_channel(job.target, options=[
        ("grpc.use_local_subchannel_pool", 1)]) for _ in range(job.channels)]
    stubs = [PaymentServiceStub(c) for c in channels]
    histogram = new_histogram()
    window = [math.inf, math.inf]  # occurred_at range that counts, set by the coordinator
    counts = {"delivered": 0, "received": 0, "heartbeats": 0, "reopened": 0}
    errors: Counter[str] = Counter()
    stopping = False
    calls: list[Any] = [None] * len(job.streams)

    async def watch(i: int, stream: Stream) -> None:
        request = pb.WatchStatusRequest(
            filter=events_pb2.StatusFilter(payment_id=stream.payment_id))
        metadata = (("authorization", f"Bearer {job.keys[stream.tenant]}"),)
        while True:
            calls[i] = call = stubs[i % len(stubs)].WatchStatus(request, metadata=metadata)
            try:
                async for message in call:
                    if message.WhichOneof("message") != "event":
                        counts["heartbeats"] += 1
                        continue
                    now = time.time()
                    at = message.event.occurred_at
                    occurred = at.seconds + at.nanos * 1e-9
                    counts["received"] += 1
                    if window[0] <= occurred < window[1]:
                        counts["delivered"] += 1
                        record(histogram, (now - occurred) * 1000)
                if not stopping:
                    errors["ENDED"] += 1
            except grpc.aio.AioRpcError as exc:
                if stopping:
                    return
                if exc.code() == grpc.StatusCode.CANCELLED and window[0] == math.inf:
                    # Refused while the streams open: gRPC core cancels calls that wait
                    # for the server to accept them once 3,000 are pending. Open it again,
                    # like a client's reconnect would; counted, before the measurement.
                    counts["reopened"] += 1
                    await asyncio.sleep(1.0)
                    continue
                errors[exc.code().name] += 1
            return

    tasks: list[asyncio.Task[None]] = []
    batch = 50
    pause = batch / job.open_rate
    for i, stream in enumerate(job.streams):
        tasks.append(asyncio.create_task(watch(i, stream)))
        if i % batch == batch - 1:  # paced: a burst of thousands is refused (see above)
            await asyncio.sleep(pause)
    await asyncio.sleep(0.5)
    conn.send("opened")
    window[0], window[1] = await loop.run_in_executor(None, conn.recv)
    await loop.run_in_executor(None, conn.recv)  # "stop"
    stopping = True
    for call in calls:
        if call is not None:
            call.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await channel.close()
    conn.send(ClientResult(list(histogram), counts["delivered"], counts["received"],
                           counts["heartbeats"], counts["reopened"], dict(errors)))
    conn.close()


# -- gRPC mode: the coordinator -------------------------------------------------------------

def live_streams(http: str) -> int:
    """WatchStatus streams the server's hub has live (its /metrics gauge, sampled every 5 s)."""
    with urllib.request.urlopen(f"http://{http}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    found = re.search(r'^malipo_stream_subscribers\{mode="live"\} (\S+)$', text, re.M)
    return int(float(found.group(1))) if found else 0


class ServerSampler:
    """Peak RSS of the server process (and any children), sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = False
        import threading
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        procs = [self.process, *self.process.children(recursive=True)]
        total = 0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop:
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.rss())
            time.sleep(0.2)

    def __enter__(self) -> ServerSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop = True
        self._thread.join(2)


class CpuMeter:
    """CPU% of a set of processes over the window (100 = one core), gone ones counted to
    their last sample."""

    def __init__(self, procs: list[psutil.Process]) -> None:
        self.procs = procs
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.cpu_percent()

    def percent(self) -> float:
        total = 0.0
        for p in self.procs:
            with contextlib.suppress(psutil.Error):
                total += p.cpu_percent()
        return round(total, 1)


def database_server(url: str) -> list[psutil.Process]:
    """The PostgreSQL server holding the bench database: its postmaster and every child
    (backends, WAL writer, checkpointer), found from a backend whose title names the
    database. Other databases' backends on the same server count too (none on its own)."""
    name = database_name(url)
    for p in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            title = (p.info["cmdline"] or [""])[0]
            if title.startswith("postgres:") and f" {name} " in title:
                postmaster = p.parent()
                if postmaster is not None:
                    return [postmaster, *postmaster.children()]
    return []


def run_grpc(dsn: str, subscribers: int, o: Options, *, floor: bool = False) -> dict[str, Any]:
    """Malipo (or, with `floor`, the bare stream floor) serving `subscribers` streams."""
    streams, tenants, payments = plan(subscribers, o)
    keys = {f"t{i}": f"bench{i}_{secrets.token_urlsafe(12)}" for i in range(tenants)}
    url = "" if floor else run_async(fresh_database(dsn, async_commit=o.async_commit,
                                                    migrated=False))
    ctx = multiprocessing.get_context("spawn")
    try:
        with (servers.stream_floor(keys) if floor else servers.malipo(url, env_extra={
                "MALIPO_API_KEYS": ",".join(f"{t}={k}" for t, k in keys.items())})) as m:
            server = psutil.Process(m.proc.popen.pid)
            print(f"  server pid {server.pid}, {len(streams)} streams over {tenants} tenants",
                  file=sys.stderr, flush=True)
            with ServerSampler(server.pid) as sampler:
                rss_idle = sampler.rss()
                share = math.ceil(len(streams) / o.clients)
                jobs = [ClientJob(m.grpc, keys, part, max(1, math.ceil(
                    len(part) / o.streams_per_channel)), o.open_rate / o.clients)
                    for part in (streams[i:i + share] for i in range(0, len(streams), share))]
                pipes: list[Connection] = []
                clients: list[BaseProcess] = []
                for job in jobs:
                    parent, child = ctx.Pipe()
                    proc = ctx.Process(target=client_main, args=(job, child), daemon=True)
                    proc.start()
                    pipes.append(parent)
                    clients.append(proc)
                try:
                    result = _measure(m, server, sampler, streams, tenants, payments, pipes,
                                      clients, rss_idle, o)
                    result["channels"] = sum(j.channels for j in jobs)
                    if floor:
                        result["mode"] = "floor"
                    return result
                finally:
                    for proc in clients:
                        proc.join(10)
                        if proc.is_alive():
                            proc.kill()
    finally:
        if url:
            run_async(servers.drop_database(dsn, url))


def stop_clients(pipes: list[Connection],
                 window: tuple[float, float] | None = None) -> list[ClientResult]:
    """Stop the client processes (sending them a `window` first if they wait for one)."""
    for p in pipes:
        if window is not None:
            p.send(window)
        p.send("stop")
    results: list[ClientResult] = []
    for p in pipes:
        if not p.poll(60):
            raise RuntimeError("a client process did not report")
        results.append(p.recv())
    return results


def _measure(m: Any, server: psutil.Process, sampler: ServerSampler, streams: list[Stream],
             tenants: int, payments: int, pipes: list[Connection],
             clients: list[BaseProcess], rss_idle: int,
             o: Options) -> dict[str, Any]:
    opening = time.monotonic()
    for p in pipes:
        if not p.poll(o.open_timeout):
            raise RuntimeError("a client process did not open its streams")
        p.recv()
    live, shown = 0, -1
    while (live := live_streams(m.http)) < len(streams):
        if time.monotonic() - opening > o.open_timeout:
            errors: Counter[str] = Counter()
            for r in stop_clients(pipes, (math.inf, math.inf)):
                errors.update(r.errors)
            raise RuntimeError(f"only {live} of {len(streams)} streams went live on the "
                               f"server; the clients' streams ended with {dict(errors)}; "
                               f"server log:\n{''.join(m.proc.lines[-20:])}")
        if live != shown:
            print(f"  {live} streams live after {time.monotonic() - opening:.0f} s",
                  file=sys.stderr, flush=True)
            shown = live
        time.sleep(0.5)
    open_s = time.monotonic() - opening
    rss_streams = sampler.rss()
    start_at = time.time() + 1.5  # the writer's interpreter starts meanwhile
    since = start_at + o.warmup
    until = since + o.seconds
    for p in pipes:
        p.send((since, until))
    client_procs = [psutil.Process(c.pid) for c in clients if c.pid is not None]
    others = {"clients": CpuMeter(client_procs)}
    writer: BaseProcess | None = None
    if m.database_url is None:  # the floor makes its own events
        _post(f"http://{m.http}/start", {"start_at": start_at, "seconds": o.warmup + o.seconds,
                                        "rate": o.rate, "tenants": tenants,
                                        "payments": payments})
    else:
        writer = start_writer(m.database_url, o, tenants, payments, start_at)
        others |= {"writer": CpuMeter([psutil.Process(writer.pid)]),
                   "database": CpuMeter(database_server(m.database_url))}
    time.sleep(max(0.0, since - time.time()))
    server.cpu_percent()
    psutil.cpu_percent()
    time.sleep(max(0.0, until - time.time()))
    cpu = server.cpu_percent()
    machine_cpu = psutil.cpu_percent() * (os.cpu_count() or 1)
    other_cpu = {f"{name}_cpu_percent": meter.percent() for name, meter in others.items()}
    load = os.getloadavg()[0]
    if writer is not None:
        writer.join(o.warmup + o.seconds + 60)
    time.sleep(o.drain)  # what is still in flight reaches the clients
    results = stop_clients(pipes)
    histogram = [sum(col) for col in zip(*(r.histogram for r in results), strict=True)]
    delivered = sum(r.delivered for r in results)
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r.errors)
    logged = (run_async(log_latency(m.database_url, since, until)) if m.database_url
              else _get_json(f"http://{m.http}/logged?since={since}&until={until}"))
    return {
        **_delivery("grpc", streams, tenants, logged, delivered, histogram, o),
        "rss_mb": round(sampler.peak / 2**20, 1),
        "rss_idle_mb": round(rss_idle / 2**20, 1),
        "rss_streams_open_mb": round(rss_streams / 2**20, 1),
        "rss_per_stream_kb": round((rss_streams - rss_idle) / len(streams) / 1024, 1),
        "server_cpu_percent": round(cpu, 1),
        **other_cpu,
        "machine_cpu_percent": round(machine_cpu, 1),
        "load_average_1m": round(load, 2),
        "errors": dict(errors),
        "reopened_while_opening": sum(r.reopened for r in results),
        "open_s": round(open_s, 1),
        "clients": len(clients),
        "seconds": o.seconds,
        "synchronous_commit": not o.async_commit,
    }


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),  # noqa: S310 - http://127.0.0.1
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
        resp.read()


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - http://127.0.0.1
        return json.loads(resp.read())


def _delivery(mode: str, streams: list[Stream], tenants: int, logged: dict[str, Any],
              delivered: int, histogram: array[int] | list[int], o: Options) -> dict[str, Any]:
    """What both modes report of the run itself: the streams, what the writer committed,
    what reached the streams and how late."""
    expected = expected_deliveries(streams, logged["per_key"])
    return {
        "mode": mode,
        "subscribers": len(streams),
        "tenant_streams": len(streams) - o.payment_watchers,
        "payment_streams": o.payment_watchers,
        "tenants": tenants,
        "fanout_per_event": round(expected / logged["events"], 1) if logged["events"] else None,
        "transitions_per_s": round(logged["events"] / o.seconds, 1),
        "delivered_msgs_per_s": round(delivered / o.seconds, 1),
        "expected_msgs": expected,
        "missing_msgs": expected - delivered,
        "latency_ms": latency(histogram),
        "writer_to_relay_ms": {"p50": logged["p50"], "p99": logged["p99"]},
    }


# -- in-process mode: the hub alone ---------------------------------------------------------

async def run_in_process(dsn: str, subscribers: int, o: Options) -> dict[str, Any]:
    from malipo.domain.events import EventFilter, StatusEvent
    from malipo.store.unit_of_work import create_pool
    from malipo.streaming import EventHub, EventRelay

    url = await fresh_database(dsn, async_commit=o.async_commit, migrated=True)
    try:
        streams, tenants, payments = plan(subscribers, o)
        pool = await create_pool(url, min_size=4, max_size=20)
        relay = EventRelay(pool, poll_interval_s=o.relay_poll)
        hub = EventHub(pool)
        process = psutil.Process()
        histogram = new_histogram()
        counts = {"delivered": 0}
        window = [math.inf, math.inf]

        async def subscriber(stream: Stream, timed: bool) -> None:
            # Every stream counts deliveries; one in ten also times them (the clock and the
            # histogram would otherwise be a visible share of the work measured).
            flt = EventFilter(tenant=stream.tenant, payment_id=stream.payment_id)
            async for item in hub.subscribe(flt, None):
                if isinstance(item, StatusEvent):
                    occurred = item.occurred_at.timestamp()
                    if window[0] <= occurred < window[1]:
                        counts["delivered"] += 1
                        if timed:
                            record(histogram, (time.time() - occurred) * 1000)

        runners = [asyncio.create_task(relay.run()), asyncio.create_task(hub.run())]
        while not hub.ready:
            await asyncio.sleep(0.01)
        rss_before = process.memory_info().rss
        tasks = [asyncio.create_task(subscriber(s, i % 10 == 0)) for i, s in enumerate(streams)]
        await asyncio.sleep(0.5)
        start_at = time.time() + 1.5
        window[0] = start_at + o.warmup
        window[1] = window[0] + o.seconds
        writer = start_writer(url, o, tenants, payments, start_at)
        await asyncio.sleep(max(0.0, window[0] - time.time()))
        process.cpu_percent()
        peak_rss = 0
        while time.time() < window[1]:
            await asyncio.sleep(0.5)
            peak_rss = max(peak_rss, process.memory_info().rss)
        cpu = process.cpu_percent()
        await asyncio.to_thread(writer.join)
        await asyncio.sleep(o.drain)
        stats = hub.stats()
        await hub.close()
        for task in tasks + runners:
            task.cancel()
        for task in tasks + runners:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await pool.close()
        logged = await log_latency(url, window[0], window[1])
    finally:
        await servers.drop_database(dsn, url)
    return {
        **_delivery("in-process", streams, tenants, logged, counts["delivered"], histogram, o),
        "rss_mb": round(peak_rss / 2**20, 1),
        "rss_growth_for_streams_mb": round((peak_rss - rss_before) / 2**20, 1),
        "rss_per_stream_kb": round((peak_rss - rss_before) / len(streams) / 1024, 1),
        "server_cpu_percent": round(cpu, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "overflows": stats.overflows,
        "max_buffered": stats.max_buffered,
        "seconds": o.seconds,
        "relay_poll_s": o.relay_poll,
        "synchronous_commit": not o.async_commit,
    }


# -- output ---------------------------------------------------------------------------------

def us_per_msg(r: dict[str, Any]) -> float:
    """Server CPU per delivered message: a cost that moves less with the machine's load."""
    rate = r["delivered_msgs_per_s"]
    return round(r["server_cpu_percent"] / 100 / rate * 1e6) if rate else math.nan


def summary_line(r: dict[str, Any]) -> str:
    """One line per subscriber count: what `make bench-stream` and `make bench` print."""
    lat = r["latency_ms"]
    errors = sum(r.get("errors", {}).values())
    return (f"watch_fanout_{r['subscribers']:<8} {r['delivered_msgs_per_s']:>9.1f} msgs/s  "
            f"{r['transitions_per_s']:.0f} transitions/s x{r['fanout_per_event']}  "
            f"p50 {lat['p50']} p99 {lat['p99']} max {lat['max']} ms  "
            f"RSS {r['rss_mb']} MB ({r['rss_per_stream_kb']} KB/stream)  "
            f"CPU {r['server_cpu_percent']}% ({us_per_msg(r)} us/msg)  "
            f"missing {r['missing_msgs']}  errors {errors}  ({r['mode']})"
            + (f"  p99 {r['p99_ratio_floor']}x, RSS {r['rss_ratio_floor']}x the floor's"
               if "p99_ratio_floor" in r else ""))


def parse() -> tuple[argparse.Namespace, Options]:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    p.add_argument("--subscribers", type=int, nargs="+", default=[1000, 10_000])
    p.add_argument("--fanout", type=int, default=10,
                   help="tenant-wide streams each event reaches (tenants = subscribers/F)")
    p.add_argument("--payment-watchers", type=int, default=0,
                   help="extra streams that each follow one payment")
    p.add_argument("--rate", type=int, default=1000, help="transitions per second")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--drain", type=float, default=2.0,
                   help="seconds after the last write before the clients stop counting")
    p.add_argument("--in-process", action="store_true",
                   help="the hub alone: relay, hub and streams in this process, no gRPC")
    p.add_argument("--clients", type=int, default=2, help="client processes (gRPC mode)")
    p.add_argument("--streams-per-channel", type=int, default=100,
                   help="WatchStatus streams per grpc.aio channel (one HTTP/2 connection each)")
    p.add_argument("--open-rate", type=float, default=1000.0,
                   help="streams opened per second, over all client processes")
    p.add_argument("--open-timeout", type=float, default=180.0,
                   help="seconds allowed for every stream to go live on the server")
    p.add_argument("--relay-poll", type=float, default=0.5,
                   help="in-process relay poll interval in s (a fallback: writers nudge it)")
    p.add_argument("--async-commit", action="store_true",
                   help="synchronous_commit=off on the bench database")
    p.add_argument("--no-floor", action="store_true",
                   help="gRPC mode: skip the bare stream floor (tests/bench/stream_floor.py) "
                   "measured before Malipo at each count")
    p.add_argument("--json", action="store_true", help="print one JSON object per count")
    p.add_argument("--out", type=Path, default=None, help="also append the JSON lines here")
    p.add_argument("--pg-dir", type=Path, default=Path("/tmp/malipo-bench-pg"),
                   help="embedded PostgreSQL data folder: its own server by default, so "
                   "test runs sharing the suite's server do not skew the figures")
    a = p.parse_args()
    return a, Options(a.fanout, a.payment_watchers, a.rate, a.warmup, a.seconds, a.drain,
                      a.clients, a.streams_per_channel, a.open_rate, a.relay_poll, a.async_commit,
                      a.open_timeout)


def main() -> None:
    args, o = parse()
    dsn = server_dsn(args.pg_dir)
    for n in args.subscribers:
        floor: dict[str, Any] | None = None
        if not args.in_process and not args.no_floor:
            print(f"watch_floor_{n}: opening {n} streams on the bare floor...",
                  file=sys.stderr, flush=True)
            floor = run_grpc(dsn, n, o, floor=True)
            print(summary_line(floor), file=sys.stderr, flush=True)
        print(f"watch_fanout_{n}: opening {n} streams...", file=sys.stderr, flush=True)
        result = (run_async(run_in_process(dsn, n, o)) if args.in_process
                  else run_grpc(dsn, n, o))
        if floor is not None:
            result["floor"] = {k: floor[k] for k in (
                "latency_ms", "rss_mb", "rss_per_stream_kb", "server_cpu_percent",
                "delivered_msgs_per_s", "missing_msgs")}
            p99, floor_p99 = result["latency_ms"]["p99"], floor["latency_ms"]["p99"]
            result["p99_ratio_floor"] = round(p99 / floor_p99, 2) if floor_p99 else None
            result["rss_ratio_floor"] = (round(result["rss_mb"] / floor["rss_mb"], 2)
                                         if floor["rss_mb"] else None)
        line = json.dumps(result)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            with args.out.open("a") as f:
                f.write(line + "\n")
        print(line if args.json else summary_line(result), flush=True)


if __name__ == "__main__":
    main()
