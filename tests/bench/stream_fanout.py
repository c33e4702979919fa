"""WatchStatus fan-out benchmark: N subscribers on one hub, a steady rate of transitions.

    .venv/bin/python -m tests.bench.stream_fanout --subscribers 1000 10000

One process runs what a server process runs (relay + hub + the subscriber streams); a second
process writes the transitions (one transaction each, like the use cases), so its CPU is not
counted against the server. Latency is from the writer's clock just before its transaction
to the subscriber's receipt. Prints one JSON object per subscriber count.

Subscribers are spread evenly over --tenants tenants and events over the same tenants, so
each event reaches subscribers/tenants streams; --payment-watchers adds streams that each
follow one payment (the common WatchStatus use), which cost nothing per unrelated event.
Uses DATABASE_URL if set, else an embedded PostgreSQL of its own (--pg-dir).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import time
import uuid
from array import array
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from malipo.domain.events import EventFilter, StatusEvent
from malipo.store.migrations import migrate
from malipo.store.unit_of_work import create_pool
from malipo.streaming import EventHub, EventRelay

BUCKET_MS = 0.25  # latency histogram resolution
BUCKETS = 40_000  # up to 10 s


def server_dsn(data_dir: Path) -> str:
    external = os.environ.get("DATABASE_URL")
    if external:
        return external
    from malipo.store.embedded import start_embedded
    return start_embedded(data_dir)


def with_database(dsn: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def fresh_database(dsn: str, *, async_commit: bool) -> str:
    name = "bench_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = with_database(dsn, name)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        if async_commit:  # isolates fan-out cost from this disk's fsync latency
            await conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    finally:
        await conn.close()
    return url


async def drop_database(dsn: str, url: str) -> None:
    name = url.rsplit("/", 1)[1].split("?", 1)[0]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# -- the writer process ---------------------------------------------------------------------

def writer_main(url: str, rate: int, seconds: float, tenants: int, payments: int) -> None:
    asyncio.run(_write(url, rate, seconds, tenants, payments))


async def _write(url: str, rate: int, seconds: float, tenants: int, payments: int) -> None:
    pool = await create_pool(url, min_size=10, max_size=30)
    tick = 0.01
    per_tick = max(1, round(rate * tick))
    n = 0
    pending: set[asyncio.Task[None]] = set()
    # Like a server process that does not lead the relay (EventRelay.nudge): after its
    # commits, one NOTIFY per burst, sent outside the writing transactions.
    nudge_due = asyncio.Event()

    async def nudge_leader() -> None:
        while True:
            await nudge_due.wait()
            nudge_due.clear()
            await pool.execute("SELECT pg_notify('malipo_outbox', '')")

    nudging = asyncio.create_task(nudge_leader())

    async def one(i: int) -> None:
        async with pool.acquire() as conn:
            payment = i % payments
            await conn.execute("INSERT INTO outbox (payload) VALUES ($1)", {
                "event_id": str(uuid.uuid4()), "tenant": f"t{payment % tenants}",
                "payment_id": f"p{payment}", "direction": "COLLECTION", "provider": "gateway",
                "account": "default", "old_status": "PENDING", "new_status": "PROCESSING",
                "provider_status": "", "provider_reference": "", "amount_minor": 1000,
                "currency": "XOF", "reason": "", "message": "", "fulfilment": {},
                "needs_review": False, "actor": "bench",
                "occurred_at": datetime.now(UTC).isoformat(),
            })
        nudge_due.set()

    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        for _ in range(per_tick):
            task = asyncio.create_task(one(n))
            pending.add(task)
            task.add_done_callback(pending.discard)
            n += 1
        await asyncio.sleep(max(0.0, (n / per_tick) * tick - elapsed))
    await asyncio.gather(*pending)
    nudging.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await nudging
    await pool.close()


# -- the server process (this one) --------------------------------------------------------

class Meter:
    def __init__(self) -> None:
        self.histogram = array("q", bytes(8 * BUCKETS))
        self.delivered = 0
        self.counting = False

    def record(self, event: StatusEvent) -> None:
        ms = (time.time() - event.occurred_at.timestamp()) * 1000
        self.histogram[min(int(ms / BUCKET_MS), BUCKETS - 1)] += 1

    def percentile(self, q: float) -> float:
        total = sum(self.histogram)
        if not total:
            return float("nan")
        target, seen = q * total, 0
        for i, count in enumerate(self.histogram):
            seen += count
            if seen >= target:
                return round((i + 1) * BUCKET_MS, 2)
        return float("inf")


async def subscriber(hub: EventHub, flt: EventFilter, meter: Meter, timed: bool) -> None:
    # Every stream counts deliveries; one in ten also times them (the clock and the
    # histogram would otherwise be a visible share of the work measured).
    async for item in hub.subscribe(flt, None):
        if meter.counting and isinstance(item, StatusEvent):
            meter.delivered += 1
            if timed:
                meter.record(item)


async def run_one(url: str, subscribers: int, tenants: int, watchers: int, rate: int,
                  warmup: float, seconds: float, relay_poll_s: float) -> dict[str, Any]:
    pool = await create_pool(url, min_size=4, max_size=20)
    relay = EventRelay(pool, poll_interval_s=relay_poll_s)
    hub = EventHub(pool)
    process = psutil.Process()
    meter = Meter()
    payments = max(tenants * 10, watchers)
    runners = [asyncio.create_task(relay.run()), asyncio.create_task(hub.run())]
    while not hub.ready:
        await asyncio.sleep(0.01)
    rss_before = process.memory_info().rss
    streams = [asyncio.create_task(subscriber(
        hub, EventFilter(tenant=f"t{i % tenants}"), meter, i % 10 == 0))
        for i in range(subscribers)]
    streams += [asyncio.create_task(subscriber(
        hub, EventFilter(tenant=f"t{p % tenants}", payment_id=f"p{p}"), meter, p % 10 == 0))
        for p in range(watchers)]
    await asyncio.sleep(0.5)
    writer = multiprocessing.get_context("spawn").Process(
        target=writer_main, args=(url, rate, warmup + seconds + 1, tenants, payments))
    writer.start()
    await asyncio.sleep(warmup)
    process.cpu_percent()
    moved_before = relay.moved
    meter.counting = True
    peak_rss = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        await asyncio.sleep(0.5)
        peak_rss = max(peak_rss, process.memory_info().rss)
    meter.counting = False
    elapsed = time.monotonic() - started
    cpu = process.cpu_percent()
    moved = relay.moved - moved_before
    stats = hub.stats()
    await asyncio.to_thread(writer.join)
    await hub.close()
    for task in streams + runners:
        task.cancel()
    for task in streams + runners:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    # How much of the latency is before the hub: writer commit + relay pickup.
    to_log = await pool.fetchrow(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, "
        "percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99 FROM ("
        "SELECT extract(epoch FROM recorded_at - occurred_at) * 1000 AS ms FROM events) t")
    await pool.close()
    return {
        "subscribers": subscribers + watchers,
        "tenant_streams": subscribers,
        "payment_streams": watchers,
        "tenants": tenants,
        "fanout_per_event": round(subscribers / tenants + watchers / payments, 1),
        "transitions_per_s": round(moved / elapsed, 1),
        "delivered_msgs_per_s": round(meter.delivered / elapsed, 1),
        "latency_ms": {"p50": meter.percentile(0.50), "p99": meter.percentile(0.99),
                       "max": meter.percentile(1.0)},
        "writer_to_relay_ms": {"p50": round(to_log["p50"], 2), "p99": round(to_log["p99"], 2)},
        "rss_mb": round(peak_rss / 2**20, 1),
        "rss_growth_for_streams_mb": round((peak_rss - rss_before) / 2**20, 1),
        "cpu_percent": round(cpu, 1),
        "overflows": stats.overflows,
        "max_buffered": stats.max_buffered,
        "seconds": round(elapsed, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description="WatchStatus fan-out benchmark")
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--payment-watchers", type=int, default=0)
    parser.add_argument("--rate", type=int, default=1000, help="transitions per second")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--relay-poll", type=float, default=0.5,
                        help="relay poll interval in s (a fallback: writers nudge it)")
    parser.add_argument("--async-commit", action="store_true",
                        help="synchronous_commit=off on the bench database")
    parser.add_argument("--pg-dir", type=Path, default=Path("/tmp/malipo-bench-pg"),
                        help="embedded PostgreSQL data folder: its own server by default, so "
                        "test runs sharing the suite's server do not skew the figures")
    args = parser.parse_args()
    relay_poll = args.relay_poll
    dsn = server_dsn(args.pg_dir)
    for n in args.subscribers:
        url = await fresh_database(dsn, async_commit=args.async_commit)
        try:
            result = await run_one(url, n, args.tenants, args.payment_watchers, args.rate,
                                   args.warmup, args.seconds, relay_poll)
        finally:
            await drop_database(dsn, url)
        result.update(relay_poll_s=relay_poll,
                      synchronous_commit=not args.async_commit)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    try:
        import uvloop  # what the server runs on
        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
