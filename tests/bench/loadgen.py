"""The load generator: several processes, each with a fixed number of requests in flight.

Every process runs one event loop (uvloop, like the server) with `concurrency` loops that send
one request after another for `warmup + seconds`, then stop by themselves. Only requests that
*start* after the warmup are recorded. With `rate` set, each loop paces its sends and latency
is measured from the intended send time, so a stalled server is not hidden by the client
waiting politely (coordinated omission).

A scenario is a name understood by `_make_call`: the same generator drives the baselines
(bare grpc.aio echo, bare aiohttp handler) and Malipo, so their ratios compare like with like.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any

SLOT_S = 0.1  # throughput-over-time resolution

Call = Callable[[int], Awaitable[None]]


@dataclass
class Job:
    scenario: str
    target: str  # host:port (gRPC) or a URL (HTTP)
    concurrency: int  # requests in flight per process
    seconds: float
    warmup: float = 1.0
    rate: float = 0.0  # requests/s per process; 0: as fast as answers come
    params: dict[str, Any] = field(default_factory=dict)
    index: int = 0  # which process this is (for disjoint keys and ids)
    processes: int = 1
    cpus: tuple[int, ...] = ()  # pin the generator to these CPUs (empty: anywhere)


@dataclass
class Stats:
    """What a run measured, merged over the processes."""

    scenario: str
    requests: int
    errors: dict[str, int]
    seconds: float
    rps: float
    latency_ms: dict[str, float]
    processes: int
    concurrency: int
    rate: float
    timeline: list[int]  # completions per SLOT_S, from the end of the warmup
    client_cpu_s: float  # the load generator processes' CPU, warmup included
    latencies_ms: list[float] = field(repr=False)

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        del d["latencies_ms"]
        return d


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {k: float("nan") for k in ("p50", "p90", "p99", "p99.9", "max")}
    s = sorted(samples)

    def at(q: float) -> float:
        return round(s[min(len(s) - 1, int(q * len(s)))], 3)

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "p99.9": at(0.999),
            "max": round(s[-1], 3)}


# -- one process --------------------------------------------------------------------------

def _process_main(job: Job, conn: Connection) -> None:
    if job.cpus:
        os.sched_setaffinity(0, job.cpus)
    try:
        import uvloop

        uvloop.run(_process(job, conn))
    except ImportError:  # pragma: no cover
        asyncio.run(_process(job, conn))


async def _process(job: Job, conn: Connection) -> None:
    call, close = await _make_call(job)
    loop = asyncio.get_running_loop()
    # Connect and warm the path once before the clock starts; a failure shows up later.
    with contextlib.suppress(Exception):
        await call(-1)
    conn.send("ready")
    start_at: float = await loop.run_in_executor(None, conn.recv)
    cpu0 = time.process_time()
    await asyncio.sleep(max(0.0, start_at - time.time()))
    t0 = time.perf_counter()
    measure_from = t0 + job.warmup
    stop_at = measure_from + job.seconds
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    slots = [0] * (int(job.seconds / SLOT_S) + 1)
    counter = iter(range(job.index, 1 << 62, job.processes))
    exhausted = False

    async def one_loop(k: int) -> None:
        nonlocal exhausted
        interval = job.concurrency / job.rate if job.rate else 0.0
        due = t0 + (k / job.rate if job.rate else 0.0) - interval
        while not exhausted:
            if interval:
                due += interval
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            began = due if interval else time.perf_counter()
            if began >= stop_at:
                return
            n = next(counter)
            try:
                await call(n)
                outcome = ""
            except IndexError:  # the scenario ran out of work (callbacks: one per payment)
                exhausted = True
                return
            except Exception as exc:  # counted, never fatal
                outcome = _error_name(exc)
            done = time.perf_counter()
            if began >= measure_from:
                if outcome:
                    errors[outcome] += 1
                else:
                    latencies.append((done - began) * 1000)
                    slots[min(len(slots) - 1, int((done - measure_from) / SLOT_S))] += 1

    await asyncio.gather(*(one_loop(k) for k in range(job.concurrency)))
    elapsed = min(time.perf_counter(), stop_at) - measure_from
    cpu = time.process_time() - cpu0  # warmup included, like the server's count (bench/cpu.py)
    await close()
    conn.send({"latencies": latencies, "errors": dict(errors), "slots": slots,
               "elapsed": elapsed, "cpu": cpu})
    conn.close()


def _error_name(exc: Exception) -> str:
    code = getattr(exc, "code", None)
    if callable(code):
        with contextlib.suppress(Exception):
            return str(getattr(code(), "name", code()))
    return type(exc).__name__


async def _make_call(job: Job) -> tuple[Call, Callable[[], Awaitable[None]]]:
    if job.scenario in ("http_echo", "callback"):
        return await _http_call(job)
    return await _grpc_call(job)


async def _grpc_call(job: Job) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import grpc

    from malipo.payments.v1 import payment_service_pb2 as pb
    from malipo.payments.v1.payment_service_pb2_grpc import PaymentServiceStub
    from tests.bench import requests

    channel = grpc.aio.insecure_channel(job.target)
    stub = PaymentServiceStub(channel)
    md = (("authorization", f"Bearer {job.params.get('api_key', '')}"),)
    scenario = job.scenario
    run_id = job.params.get("run_id", uuid.uuid4().hex[:8])

    if scenario == "echo":
        echo = channel.unary_unary("/bench.Echo/Echo")
        body = requests.create(f"echo-{run_id}-0", 0).SerializeToString()

        async def call(n: int) -> None:
            await echo(body, timeout=10)
    elif scenario == "create":
        async def call(n: int) -> None:
            if n < 0:
                return
            await stub.CreatePayment(requests.create(f"{run_id}-{n}", n), metadata=md,
                                     timeout=10)
    elif scenario == "replay":
        seeds: int = job.params["seeds"]
        prefix = job.params["seed_prefix"]

        async def call(n: int) -> None:
            i = abs(n) % seeds
            await stub.CreatePayment(requests.create(f"{prefix}-{i}", i), metadata=md,
                                     timeout=10)
    elif scenario == "get":
        ids: list[str] = job.params["ids"]

        async def call(n: int) -> None:
            await stub.GetPayment(pb.GetPaymentRequest(payment_id=ids[abs(n) % len(ids)]),
                                  metadata=md, timeout=10)
    elif scenario == "list":
        size = int(job.params.get("page_size", 20))

        async def call(n: int) -> None:
            await stub.ListPayments(pb.ListPaymentsRequest(page_size=size), metadata=md,
                                    timeout=10)
    else:
        raise ValueError(f"unknown scenario {scenario}")

    async def close() -> None:
        await channel.close()

    return call, close


async def _http_call(job: Job) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import aiohttp

    from tests.bench import requests

    connector = aiohttp.TCPConnector(limit=job.concurrency + 1)
    session = aiohttp.ClientSession(connector=connector)
    url = job.target
    if job.scenario == "http_echo":
        body = requests.callback_body("pay_echo", "SIM-echo", 1000, "KES")

        async def call(n: int) -> None:
            async with session.post(url, data=body, headers={
                    "Content-Type": "application/json"}) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}")
    else:
        targets: list[list[Any]] = job.params["payments"]
        secret: str = job.params["secret"]

        async def call(n: int) -> None:
            if n < 0:
                return
            i = n // job.processes
            if i >= len(targets):
                raise IndexError(i)
            payment_id, reference, amount, currency = targets[i]
            body = requests.callback_body(payment_id, reference, amount, currency)
            async with session.post(url, data=body, headers=requests.callback_headers(
                    secret, body)) as resp:
                text = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status} {text[:60]!r}")

    async def close() -> None:
        await session.close()

    return call, close


# -- the coordinator ----------------------------------------------------------------------

def run(job: Job, processes: int, *, split: list[dict[str, Any]] | None = None) -> Stats:
    """Run `job` in `processes` processes that start together; merge what they measured.

    `split` gives each process its own params (e.g. a disjoint share of payments)."""
    ctx = multiprocessing.get_context("spawn")
    pipes: list[Connection] = []
    procs = []
    for i in range(processes):
        params = {**job.params, **(split[i] if split else {})}
        mine = replace(job, params=params, index=i, processes=processes)
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_process_main, args=(mine, child), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    for p in pipes:
        if not p.poll(60):
            raise RuntimeError("a load generator process did not start")
        p.recv()
    start_at = time.time() + 0.2
    for p in pipes:
        p.send(start_at)
    results = []
    for p in pipes:
        if not p.poll(job.warmup + job.seconds + 60):
            raise RuntimeError("a load generator process did not finish")
        results.append(p.recv())
    for proc in procs:
        proc.join(10)
    latencies = [x for r in results for x in r["latencies"]]
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r["errors"])
    elapsed = max(r["elapsed"] for r in results)
    width = max(1, int(elapsed / SLOT_S + 0.999))
    timeline = [sum(r["slots"][i] for r in results if i < len(r["slots"]))
                for i in range(width)]
    return Stats(
        scenario=job.scenario, requests=len(latencies), errors=dict(errors),
        seconds=round(elapsed, 2), rps=round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        latency_ms=percentiles(latencies), processes=processes,
        concurrency=job.concurrency * processes, rate=job.rate * processes,
        timeline=timeline, client_cpu_s=round(sum(r["cpu"] for r in results), 3),
        latencies_ms=latencies,
    )


if __name__ == "__main__":  # a quick manual check: python -m tests.bench.loadgen host:port
    import sys

    stats = run(Job("echo", sys.argv[1], concurrency=16, seconds=3), 2)
    print(json.dumps(stats.summary()["latency_ms"]), stats.rps)
