"""Floor ratios from interleaved slices: `make bench-paired`.

    .venv/bin/python -m tests.bench.paired                    # create, get, replay, callbacks
    .venv/bin/python -m tests.bench.paired --only create --blocks 6

`tests.bench.run` measures a floor, then Malipo minutes later; on a shared machine the
speed of both moves by a quarter between such measurements, so one run's ratio says little
and a median of three only a bit more. Here the floor server and `malipo serve` run side by
side, on one PostgreSQL, and each scenario is measured in slices in ABBA blocks (floor,
Malipo, Malipo, floor): a block's ratio is Malipo's requests over the floor's within half a
minute of each other, and the order cancels a drift that is steady over the block. The
ratio reported is the median over blocks, with every block's ratio beside it.

Slices are as long as `tests.bench.run`'s scenarios (1 s warmup, 5 s measured). Shorter
ones measure the same: three back-to-back runs of `--only create` gave 0.565x with 0.5 s +
3 s slices, 0.549x with these, then 0.591x with the short ones again.

What side by side costs: the server not being measured is idle, not stopped. Its idle CPU
(Malipo's relay, reconciler and webhook loops) lands in the other's slices, and is printed
per scenario as "idle neighbour CPU", so it can be weighed; autovacuum of either side's
tables may run in either side's slices.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bench import cpu, floors, loadgen, servers
from tests.bench.loadgen import Job, Stats
from tests.bench.run import (
    FLOOR,
    FLOOR_API_KEY,
    SAME_REQUESTS,
    SEEDS,
    TARGETS,
    _processing,
    _seed,
    machine,
    met,
    same_speed,
)

SCENARIOS = ("create", "get", "replay", "callbacks")


@dataclass
class Options:
    blocks: int
    seconds: float
    warmup: float
    processes: int
    concurrency: int
    only: tuple[str, ...]
    out: Path


@dataclass
class Slice:
    """One measured slice: its rate, and CPU ms per request of the server measured and of
    the idle one beside it."""

    rps: float
    server_cpu_ms: float
    neighbour_cpu_ms: float
    client_cpu_ms: float = 0.0  # the load generator's, per request

    @classmethod
    def measure(cls, job: Job, processes: int, pid: int, neighbour: int,
                split: list[dict[str, Any]] | None = None) -> Slice:
        idle_before = cpu.tree_seconds(neighbour)
        with cpu.accounted(pid) as mine:
            stats: Stats = loadgen.run(job, processes, split=split)
        idle = cpu.tree_seconds(neighbour) - idle_before
        requests = max(1, round(stats.rps * (job.seconds + job.warmup)))
        if sum(stats.errors.values()):
            print(f"  errors in a slice of {job.scenario}: {stats.errors}", flush=True)
        return cls(stats.rps, mine.server * 1000 / requests, idle * 1000 / requests,
                   stats.client_cpu_s * 1000 / requests)


@dataclass
class Paired:
    """A scenario's ABBA blocks: (floor, Malipo, Malipo, floor) slices each."""

    scenario: str
    blocks: list[tuple[Slice, Slice, Slice, Slice]] = field(default_factory=list)

    def ratios(self) -> list[float]:
        return [round((m1.rps + m2.rps) / (f1.rps + f2.rps), 3)
                for f1, m1, m2, f2 in self.blocks if f1.rps + f2.rps > 0]

    def same_speed_ratios(self) -> list[float]:
        """Each block's ratio as at the floor's speed (tests/bench/run.py same_speed): for
        scenarios whose floor here is sent the same messages, empty otherwise (replay, held to
        the get floor)."""
        if SAME_REQUESTS.get(self.scenario) != FLOOR.get(self.scenario):
            return []
        ratios = [same_speed((m1.rps + m2.rps) / (f1.rps + f2.rps),
                             m1.client_cpu_ms + m2.client_cpu_ms,
                             f1.client_cpu_ms + f2.client_cpu_ms)
                  for f1, m1, m2, f2 in self.blocks if f1.rps + f2.rps > 0]
        return [r for r in ratios if r is not None]

    def cpu_ratios(self) -> list[float]:
        return [round((m1.server_cpu_ms + m2.server_cpu_ms)
                      / (f1.server_cpu_ms + f2.server_cpu_ms), 3)
                for f1, m1, m2, f2 in self.blocks if f1.server_cpu_ms + f2.server_cpu_ms > 0]

    def summary(self) -> dict[str, Any]:
        same_speed_ratios = self.same_speed_ratios()
        floor = [s for b in self.blocks for s in (b[0], b[3])]
        mine = [s for b in self.blocks for s in (b[1], b[2])]
        return {
            "scenario": self.scenario,
            "ratio_floor": statistics.median(self.ratios()),
            "block_ratios": self.ratios(),
            "server_cpu_ratio_floor": statistics.median(self.cpu_ratios()),
            "block_cpu_ratios": self.cpu_ratios(),
            "ratio_same_speed": (statistics.median(same_speed_ratios)
                                 if same_speed_ratios else None),
            "block_same_speed_ratios": same_speed_ratios,
            "floor_rps": round(statistics.median(s.rps for s in floor), 1),
            "malipo_rps": round(statistics.median(s.rps for s in mine), 1),
            "server_cpu_ms": {"floor": round(statistics.median(
                s.server_cpu_ms for s in floor), 3), "malipo": round(statistics.median(
                s.server_cpu_ms for s in mine), 3)},
            # What the idle server beside it spent, per request of the one measured.
            "idle_neighbour_cpu_ms": {"in_floor_slices": round(statistics.median(
                s.neighbour_cpu_ms for s in floor), 3), "in_malipo_slices": round(
                statistics.median(s.neighbour_cpu_ms for s in mine), 3)},
        }


SliceJob = Callable[[int], tuple[Job, list[dict[str, Any]] | None]]


def abba(scenario: str, o: Options, floor: tuple[SliceJob, int],
         malipo: tuple[SliceJob, int]) -> Paired:
    """`floor` and `malipo`: (slice number -> the slice's job and split, server pid)."""
    paired = Paired(scenario)
    (floor_job, floor_pid), (malipo_job, malipo_pid) = floor, malipo
    n = 0

    def one(which: str) -> Slice:
        nonlocal n
        n += 1
        if which == "floor":
            job, split = floor_job(n)
            return Slice.measure(job, o.processes, floor_pid, malipo_pid, split)
        job, split = malipo_job(n)
        return Slice.measure(job, o.processes, malipo_pid, floor_pid, split)

    for b in range(o.blocks):
        block = (one("floor"), one("malipo"), one("malipo"), one("floor"))
        paired.blocks.append(block)
        print(f"  {scenario:<10} block {b + 1}: floor {block[0].rps:7.1f} {block[3].rps:7.1f}"
              f"  malipo {block[1].rps:7.1f} {block[2].rps:7.1f} req/s"
              f"  ratio {paired.ratios()[-1]:.3f}", flush=True)
    return paired


class PairedBench:
    def __init__(self, o: Options) -> None:
        self.o = o
        self.results: dict[str, Paired] = {}

    def job(self, scenario: str, target: str, **params: Any) -> Job:
        return Job(scenario, target, concurrency=self.o.concurrency, seconds=self.o.seconds,
                   warmup=self.o.warmup, params=params)

    def malipo_env(self) -> dict[str, str]:
        """The callbacks' payments are made up front for all slices, several times what
        `tests.bench.run` makes. Kept copies (app/inflight.py RecentPayments, 64 MB: about
        50,000 payments) would cover only the newest of them, and the rest would each cost a
        read of the row first: the run measures what `tests.bench.run` does, where every
        callback names a payment the process still holds, so the copies get room for all."""
        return {"MALIPO_RECENT_PAYMENTS_MB": "512"} if "callbacks" in self.o.only else {}

    def run(self, dsn: str) -> None:
        o = self.o
        floor_db = asyncio.run(servers.create_database(dsn))
        malipo_db = asyncio.run(servers.create_database(dsn))
        try:
            with servers.floor("grpc", floor_db, FLOOR_API_KEY) as (floor_grpc, floor_pid), \
                    servers.floor("http", floor_db, FLOOR_API_KEY) as (floor_http, http_pid), \
                    servers.malipo(malipo_db, env_extra=self.malipo_env()) as m:
                malipo_pid = m.proc.popen.pid
                run_id = uuid.uuid4().hex[:8]
                floor_params = {"api_key": FLOOR_API_KEY}
                malipo_params = {"api_key": m.api_key}
                seed_prefix = f"seed-{run_id}"
                ids = asyncio.run(_seed(m, seed_prefix))
                if "create" in o.only:
                    self.results["create"] = abba("create", o, (
                        lambda n: (self.job("create", floor_grpc, **floor_params,
                                            run_id=f"{run_id}f{n}"), None), floor_pid), (
                        lambda n: (self.job("create", m.grpc, **malipo_params,
                                            run_id=f"{run_id}m{n}"), None), malipo_pid))
                if {"get", "replay"} & set(o.only):
                    floor_ids = [t[0] for t in asyncio.run(floors.processing(floor_db))]
                    if not floor_ids:  # create skipped: make the floor's rows to read
                        loadgen.run(self.job("create", floor_grpc, **floor_params,
                                             run_id=f"{run_id}fs"), o.processes)
                        floor_ids = [t[0] for t in asyncio.run(floors.processing(floor_db))]
                    get_floor: tuple[SliceJob, int] = (lambda n: (self.job(
                        "get", floor_grpc, **floor_params, ids=floor_ids[:SEEDS]), None),
                        floor_pid)
                    if "get" in o.only:
                        self.results["get"] = abba("get", o, get_floor, (
                            lambda n: (self.job("get", m.grpc, **malipo_params, ids=ids),
                                       None), malipo_pid))
                    if "replay" in o.only:
                        self.results["replay"] = abba("replay", o, get_floor, (
                            lambda n: (self.job("replay", m.grpc, **malipo_params,
                                                seeds=len(ids), seed_prefix=seed_prefix),
                                       None), malipo_pid))
                if "callbacks" in o.only:
                    self.callbacks((floor_grpc, floor_http, http_pid, floor_db),
                                   (m, malipo_pid, seed_prefix), run_id)
        finally:
            for database in (floor_db, malipo_db):
                asyncio.run(servers.drop_database(dsn, database))

    def callbacks(self, floor: tuple[str, str, int, str],
                  malipo: tuple[servers.Malipo, int, str], run_id: str) -> None:
        """One payment per callback: each side gets enough PROCESSING payments for all its
        slices first (unmeasured), and each slice takes ones no slice before it used."""
        o = self.o
        floor_grpc, floor_http, floor_pid, floor_db = floor
        m, malipo_pid, seed_prefix = malipo
        window = o.seconds + o.warmup
        # Above each side's rate on this machine (floor ~3,300/s, Malipo ~1,700/s at best):
        # a slice that runs out counts errors, printed, rather than a wrong rate.
        per_slice = {"floor": int(4000 * window), "malipo": int(2000 * window)}

        def topped(side: str, target: str, key: str,
                   ready: Callable[[], list[list[Any]]]) -> None:
            need = per_slice[side] * 2 * o.blocks
            for n in range(60):  # bounded: a failing server must not spin forever
                if len(ready()) >= need:
                    return
                loadgen.run(Job("create", target, concurrency=o.concurrency, seconds=5.0,
                                warmup=0.0, params={"api_key": key,
                                                    "run_id": f"{run_id}{side}{n}"}),
                            o.processes)
            raise RuntimeError(f"could not make {need} payments at {target}")

        def floor_ready() -> list[list[Any]]:
            return asyncio.run(floors.processing(floor_db))

        def malipo_ready() -> list[list[Any]]:
            return asyncio.run(_processing(m.database_url, seed_prefix))

        print("  callbacks: making one PROCESSING payment per callback on each side first",
              flush=True)
        topped("floor", floor_grpc, FLOOR_API_KEY, floor_ready)
        topped("malipo", m.grpc, m.api_key, malipo_ready)
        url = f"http://{floor_http}/callbacks/simulator/default"
        secret = {"secret": servers.CALLBACK_SECRET}

        def split(side: str, ready: list[list[Any]]) -> list[dict[str, Any]]:
            take = ready[:per_slice[side]]
            return [{"payments": take[i::o.processes]} for i in range(o.processes)]

        self.results["callbacks"] = abba("callbacks", o, (
            lambda n: (self.job("callback", url, **secret), split("floor", floor_ready())),
            floor_pid), (
            lambda n: (self.job("callback", m.callback_url(), **secret),
                       split("malipo", malipo_ready())), malipo_pid))

    def report(self, command: str, started: float) -> list[dict[str, Any]]:
        rows = [p.summary() for p in self.results.values()]
        print("\nfloor ratios, median of ABBA blocks (each block: floor, Malipo, Malipo, floor):")
        for r in rows:
            print(f"  {r['scenario']:<10} {r['ratio_floor']:.3f}x  blocks {r['block_ratios']}"
                  f"  req/s floor {r['floor_rps']} malipo {r['malipo_rps']}", flush=True)
            print(f"  {'':<10} server CPU {r['server_cpu_ratio_floor']:.2f}x the floor's "
                  f"(ms/request {r['server_cpu_ms']['malipo']} vs "
                  f"{r['server_cpu_ms']['floor']}); idle neighbour CPU ms/request: "
                  f"{r['idle_neighbour_cpu_ms']['in_floor_slices']} in floor slices, "
                  f"{r['idle_neighbour_cpu_ms']['in_malipo_slices']} in Malipo's", flush=True)
            if r["ratio_same_speed"] is not None:
                print(f"  {'':<10} as at the floor's speed (for reading, not a target): "
                      f"{r['ratio_same_speed']:.3f}x  blocks {r['block_same_speed_ratios']}",
                      flush=True)
        targets = []
        for scenario, key, op, target in TARGETS:
            found = next((r for r in rows if r["scenario"] == scenario), None)
            if found is None or key not in found:
                continue
            value = found[key]
            ok = met(value, op, target)
            targets.append({"scenario": scenario, "measure": key, "target": f"{op} {target}",
                            "median": value, "met": ok})
            print(f"  target {scenario:<10} {key:<24} {value:.3f} {op} {target}: "
                  f"{'met' if ok else 'MISSED'}", flush=True)
        self.o.out.mkdir(parents=True, exist_ok=True)
        (self.o.out / "paired.json").write_text(json.dumps({
            "command": command, "machine": machine(), "started": started,
            "duration_s": round(time.time() - started, 1),
            "options": {"blocks": self.o.blocks, "seconds": self.o.seconds,
                        "warmup": self.o.warmup, "processes": self.o.processes,
                        "concurrency": self.o.concurrency},
            "results": rows, "targets": targets}, indent=2) + "\n")
        print(f"\nresults: {self.o.out / 'paired.json'}")
        return targets


def parse() -> Options:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    p.add_argument("--blocks", type=int, default=3, help="ABBA blocks per scenario")
    p.add_argument("--seconds", type=float, default=5.0, help="measured seconds per slice")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per slice")
    p.add_argument("--processes", type=int, default=2, help="load generator processes")
    p.add_argument("--concurrency", type=int, default=16,
                   help="requests in flight per load generator process")
    p.add_argument("--only", nargs="*", default=list(SCENARIOS), choices=SCENARIOS)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    out = a.out or servers.ROOT / "bench-results" / ("paired-" + time.strftime("%Y%m%d-%H%M%S"))
    return Options(max(1, a.blocks), a.seconds, a.warmup, a.processes, a.concurrency,
                   tuple(a.only), out)


def main() -> None:
    o = parse()
    started = time.time()
    print(f"machine: {json.dumps(machine())}", flush=True)
    print(f"load: {o.processes} processes x {o.concurrency} in flight; {o.blocks} ABBA blocks "
          f"of {o.warmup}s warmup + {o.seconds}s slices", flush=True)
    bench = PairedBench(o)
    bench.run(servers.server_dsn())
    bench.report("python -m tests.bench.paired " + " ".join(sys.argv[1:]), started)


if __name__ == "__main__":
    main()
