"""`make bench`: every hot path against a bare baseline measured in the same run.

    .venv/bin/python -m tests.bench.run                     # modest defaults, a few minutes
    .venv/bin/python -m tests.bench.run --seconds 30 --fanout 1000 10000 --fanout-seconds 15
    .venv/bin/python -m tests.bench.run --only callbacks     # `make bench-callbacks`

Order: bare grpc.aio echo and bare aiohttp handler (what the stack costs doing nothing), the
floors (tests/bench/floors.py: bare servers doing only the durable work the contract needs,
on the same PostgreSQL), then `malipo serve` as a subprocess on a fresh database:
CreatePayment at full load and at half of it, idempotent replay, GetPayment, a ListPayments
page, signed simulator callbacks, then one and two workers with the load generator pinned to
one core, then WatchStatus fan-out over gRPC (tests/bench/stream_fanout.py, whose own floor
is a bare grpc.aio stream server). Every scenario is a ratio to its floor and to echo, with
CPU ms per request (server, PostgreSQL, load generator) and PostgreSQL commits and statements
per request. `--repeat 3` runs it all three times back to back and prints the medians.
Results (JSON and PNG plots) go to bench-results/<time>/; the table printed at the end is
what the README quotes. `--only` and `--skip` take scenario names; a baseline or floor runs
when a scenario kept needs it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Generator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import grpc

from tests.bench import cpu, floors, loadgen, pgstats, requests, servers
from tests.bench.loadgen import Job, Stats

ROOT = servers.ROOT
SEEDS = 500  # payments behind the replay and GetPayment scenarios
SCENARIOS = ["echo_grpc", "echo_aiohttp", "floor_create", "floor_get", "floor_replay",
             "floor_callbacks", "create", "replay", "get", "list", "callbacks", "workers",
             "fanout", "drift"]
# The baseline each scenario's ratio is to (fanout has none).
BASELINE = {"create": "echo_grpc", "replay": "echo_grpc", "get": "echo_grpc",
            "list": "echo_grpc", "workers": "echo_grpc", "drift": "echo_grpc",
            "callbacks": "echo_aiohttp", "floor_create": "echo_grpc", "floor_get": "echo_grpc",
            "floor_replay": "echo_grpc", "floor_callbacks": "echo_aiohttp"}
# The floor each scenario is held to: the same durable work, nothing else.
FLOOR = {"create": "floor_create", "replay": "floor_get", "get": "floor_get",
         "callbacks": "floor_callbacks"}
# Printed beside the target's floor, for what it tells, not held to: replay's target is the
# get floor, but a replay's request and answer are a create's, which cost the load
# generator and grpc more than a get's; the create floor's own replay (its create answering
# a key it holds: a claim that finds the key, then one read) carries the same messages.
ALSO = {"replay": "floor_replay"}
# The floor whose load generator sends and receives the same messages as each scenario's:
# its own floor, but for replay (ALSO). Its CPU per request is then the same work on both
# sides, so their ratio tells how much slower the machine ran in one window than in the
# other (see same_speed).
SAME_REQUESTS = FLOOR | ALSO
FLOOR_API_KEY = "bench-floor-key"


@dataclass
class Options:
    seconds: float
    warmup: float
    processes: int
    concurrency: int
    fanout: list[int]
    fanout_seconds: float
    fanout_rate: int
    min_callbacks: int
    profile: set[str]
    skip: set[str]
    out: Path
    repeat: int = 1
    pin_loadgen: bool = False
    statements: bool = False
    profiler: str = "py-spy"


def parse() -> Options:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    p.add_argument("--seconds", type=float, default=5.0, help="measured seconds per scenario")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    p.add_argument("--processes", type=int, default=2, help="load generator processes")
    p.add_argument("--concurrency", type=int, default=16,
                   help="requests in flight per load generator process")
    p.add_argument("--fanout", type=int, nargs="*", default=[1000, 10_000],
                   help="WatchStatus subscriber counts (none: skip)")
    p.add_argument("--fanout-seconds", type=float, default=5.0)
    p.add_argument("--fanout-rate", type=int, default=1000, help="transitions/s")
    p.add_argument("--min-callbacks", type=int, default=2000,
                   help="PROCESSING payments to have ready for the callbacks scenario")
    p.add_argument("--profile", nargs="*", default=[], metavar="SCENARIO",
                   help="py-spy the server while these scenarios run (create, get, ...); "
                        "writes <scenario>.svg and collapsed stacks, summarised by "
                        "`python -m tests.bench.profile_top`")
    p.add_argument("--profiler", choices=["py-spy", "perf"], default="py-spy",
                   help="perf: Linux perf on the server instead (native code too: the "
                        "interpreter, the kernel, grpc, asyncpg), summarised by library in "
                        "profile-<scenario>.perf.txt")
    p.add_argument("--skip", nargs="*", default=[], choices=SCENARIOS,
                   help="scenarios not to run")
    p.add_argument("--only", nargs="*", default=[], choices=SCENARIOS,
                   help="run only these scenarios (and the baselines they are compared to)")
    p.add_argument("--pin-loadgen", action="store_true",
                   help="every scenario with the load generator pinned to the last core "
                   "(servers and PostgreSQL keep the others): steadier on 2 cores")
    p.add_argument("--repeat", type=int, default=1,
                   help="run everything N times back to back; the summary gives medians")
    p.add_argument("--statements", action="store_true",
                   help="print the statements that took PostgreSQL longest in each scenario "
                        "(execution us and calls per request; results.json always has them)")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    out = a.out or ROOT / "bench-results" / time.strftime("%Y%m%d-%H%M%S")
    return Options(a.seconds, a.warmup, a.processes, a.concurrency, a.fanout,
                   a.fanout_seconds, a.fanout_rate, a.min_callbacks, set(a.profile),
                   skipped(set(a.skip), set(a.only)), out, max(1, a.repeat), a.pin_loadgen,
                   a.statements, a.profiler)


def loadgen_cpus() -> tuple[int, ...]:
    """The last core for the load generator, when there is more than one."""
    cores = sorted(os.sched_getaffinity(0))
    return (cores[-1],) if len(cores) > 1 else ()


def skipped(skip: set[str], only: set[str]) -> set[str]:
    """Everything not kept; a baseline is kept while a kept scenario is compared to it."""
    kept = (set(only) if only else set(SCENARIOS)) - skip
    kept |= {FLOOR[k] for k in kept if k in FLOOR}
    kept |= {ALSO[k] for k in kept if k in ALSO}
    kept |= {BASELINE[k] for k in kept if k in BASELINE}
    if kept & {"replay", "floor_get", "floor_replay"}:
        kept.add("floor_create")  # the get floor reads the payments the create floor made
    return set(SCENARIOS) - kept


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {"cores": os.cpu_count(), "cpu": model, "memory": mem,
            "python": platform.python_version(), "grpcio": grpc.__version__,
            "platform": platform.platform()}


class Bench:
    def __init__(self, opts: Options) -> None:
        self.o = opts
        self.results: dict[str, dict[str, Any]] = {}
        self.stats: dict[str, Stats] = {}
        self.skipped: dict[str, str] = {}

    def job(self, scenario: str, target: str, **kw: Any) -> Job:
        if self.o.pin_loadgen:
            kw.setdefault("cpus", loadgen_cpus())
        return Job(scenario, target, concurrency=kw.pop("concurrency", self.o.concurrency),
                   seconds=kw.pop("seconds", self.o.seconds), warmup=self.o.warmup, **kw)

    def measure(self, name: str, job: Job, baseline: str | None = None, *,
                split: list[dict[str, Any]] | None = None, pid: int | None = None,
                floor: str | None = None, database_url: str | None = None,
                **extra: Any) -> Stats:
        with pgstats.counted(database_url) as db, \
                self.profiled(name, pid, job.seconds + job.warmup), cpu.accounted(pid) as use:
            stats = loadgen.run(job, self.o.processes, split=split)
        self.stats[name] = stats
        # Requests over the whole window (warmup too), at the measured rate.
        window = round(stats.rps * (job.seconds + job.warmup))
        entry: dict[str, Any] = stats.summary() | extra | {
            "cpu_ms_per_request": use.per_request(window, stats.client_cpu_s),
            "database_cpu_ms_per_request": use.database_per_request(window)}
        if database_url is not None:
            entry["db_per_request"] = db.per_request(window)
            entry["db_top_statements"] = db.top_per_request(window)
        if baseline and baseline in self.stats:
            base = self.stats[baseline]
            entry["baseline"] = baseline
            entry["ratio_rps"] = round(stats.rps / base.rps, 3) if base.rps else None
        floor = floor or FLOOR.get(name)
        if floor and floor in self.stats and floor in self.results:
            ground = self.stats[floor]
            entry["floor"] = floor
            entry["ratio_floor"] = round(stats.rps / ground.rps, 3) if ground.rps else None
            mine = entry["cpu_ms_per_request"].get("server")
            theirs = self.results[floor]["cpu_ms_per_request"].get("server")
            if mine and theirs:
                entry["server_cpu_ratio_floor"] = round(mine / theirs, 2)
        also = ALSO.get(name)
        if also in self.stats:
            entry["ratio_" + also] = round(stats.rps / self.stats[also].rps, 3)
        same = SAME_REQUESTS.get(name)
        if same in self.stats and same in self.results:
            entry["ratio_same_speed"] = same_speed(
                stats.rps / self.stats[same].rps, entry["cpu_ms_per_request"].get("client"),
                self.results[same]["cpu_ms_per_request"].get("client"))
        self.results[name] = entry
        ratio = (f"  {entry['ratio_rps']:.2f}x {baseline}"
                 if entry.get("ratio_rps") is not None else "")
        if entry.get("ratio_floor") is not None:
            ratio += f"  {entry['ratio_floor']:.2f}x {floor}"
        if also and entry.get("ratio_" + also) is not None:
            ratio += f"  ({entry['ratio_' + also]:.2f}x {also})"
        if entry.get("ratio_same_speed") is not None:
            ratio += f"  [{entry['ratio_same_speed']:.2f}x {same} at its speed]"
        lat = stats.latency_ms
        print(f"{name:<22} {stats.rps:>9.1f} req/s  p50 {lat['p50']:.2f}  p99 {lat['p99']:.2f} "
              f"p99.9 {lat['p99.9']:.2f} ms  errors {sum(stats.errors.values())}{ratio}",
              flush=True)
        if pid is not None and entry["cpu_ms_per_request"]:
            print(f"{'':<22} CPU ms/request: " + "  ".join(
                f"{k} {v:.3f}" for k, v in entry["cpu_ms_per_request"].items())
                + (f"  (server {entry['server_cpu_ratio_floor']:.2f}x the floor's)"
                   if "server_cpu_ratio_floor" in entry else ""), flush=True)
            if entry["database_cpu_ms_per_request"]:
                print(f"{'':<22} database CPU ms/request by process: " + "  ".join(
                    f"{k} {v:.3f}" for k, v in entry["database_cpu_ms_per_request"].items()),
                    flush=True)
        if entry.get("db_per_request"):
            d = entry["db_per_request"]
            print(f"{'':<22} PostgreSQL per request: {d['commits']} commits, "
                  f"{d['wal_bytes']} WAL bytes, "
                  + (f"{d['statements']} statements" if d["statements"] is not None
                     else "statements n/a (pg_stat_statements not loaded)")
                  + (f", {d['plans']} plans" if d.get("plans") is not None else ""),
                  flush=True)
            if self.o.statements:
                for top in entry["db_top_statements"]:
                    print(f"{'':<24}{top['exec_us']:>7.1f} us {top['calls']:>5.2f} calls  "
                          f"per call: {top['wal_records_per_call']:>4.1f} WAL records "
                          f"{top['wal_bytes_per_call']:>5} B  {top['blocks_per_call']:>5.1f} "
                          f"buffers {top['dirtied_per_call']:>4.1f} dirtied  "
                          f"{top['query'][:60]}", flush=True)
        return stats

    # -- scenarios --------------------------------------------------------------------

    def baselines(self) -> None:
        if "echo_grpc" not in self.o.skip:
            with servers.baseline("grpc") as (address, pid):
                self.measure("echo_grpc", self.job("echo", address), pid=pid)
        if "echo_aiohttp" not in self.o.skip:
            with servers.baseline("http") as (address, pid):
                url = f"http://{address}/callbacks/simulator/default"
                self.measure("echo_aiohttp", self.job("http_echo", url), pid=pid)

    def floors(self, dsn: str) -> None:
        """The floor servers on a database of their own, on the same PostgreSQL."""
        wanted = {"floor_create", "floor_get", "floor_replay", "floor_callbacks"} - self.o.skip
        if not wanted:
            return
        database = asyncio.run(servers.create_database(dsn))
        try:
            params = {"api_key": FLOOR_API_KEY, "run_id": uuid.uuid4().hex[:8]}
            with servers.floor("grpc", database, FLOOR_API_KEY) as (address, pid):
                self.measure("floor_create", self.job("create", address, params=params),
                             "echo_grpc", pid=pid, database_url=database)
                if "floor_get" in wanted:
                    ids = [t[0] for t in asyncio.run(floors.processing(database))][:SEEDS]
                    self.measure("floor_get", self.job("get", address, params={
                        **params, "ids": ids}), "echo_grpc", pid=pid, database_url=database)
                if "floor_replay" in wanted:
                    # The warmup makes the SEEDS keys; every measured call replays one.
                    self.measure("floor_replay", self.job("replay", address, params={
                        **params, "seeds": SEEDS, "seed_prefix": f"floor-{params['run_id']}"}),
                        "echo_grpc", pid=pid, database_url=database)
            if "floor_callbacks" in wanted:
                targets = asyncio.run(floors.processing(database))
                # One payment per callback, and the floor answers callbacks faster than it
                # creates payments: twice what the create floor made in its window, made
                # unmeasured by the same generator, so the scenario never runs out of work.
                need = max(self.o.min_callbacks, 2 * len(targets))
                with servers.floor("grpc", database, FLOOR_API_KEY) as (address, _pid):
                    for _ in range(10):  # bounded: a failing floor must not spin forever
                        if len(targets) >= need:
                            break
                        loadgen.run(self.job("create", address, seconds=3.0, params={
                            **params, "run_id": uuid.uuid4().hex[:8]}), self.o.processes)
                        targets = asyncio.run(floors.processing(database))
                split = [{"payments": targets[i::self.o.processes]}
                         for i in range(self.o.processes)]
                with servers.floor("http", database, FLOOR_API_KEY) as (address, pid):
                    self.measure("floor_callbacks", self.job(
                        "callback", f"http://{address}/callbacks/simulator/default",
                        params={"secret": servers.CALLBACK_SECRET}), "echo_aiohttp",
                        split=split, pid=pid, database_url=database)
        finally:
            asyncio.run(servers.drop_database(dsn, database))

    def malipo(self, dsn: str) -> None:
        o = self.o
        if not {"create", "replay", "get", "list", "callbacks"} - o.skip:
            return
        database = asyncio.run(servers.create_database(dsn))
        try:
            with servers.malipo(database) as m:
                pid = m.proc.popen.pid
                params = {"api_key": m.api_key, "run_id": uuid.uuid4().hex[:8]}
                seed_prefix = f"seed-{params['run_id']}"
                ids: list[str] = []
                if {"replay", "get"} - o.skip:
                    try:
                        ids = asyncio.run(_seed(m, seed_prefix))
                    except grpc.aio.AioRpcError:
                        print("seeding failed; the server said:\n"
                              + "".join(m.proc.lines[-30:]))
                        raise
                if "create" not in o.skip:
                    full = self.measure("create", self.job("create", m.grpc, params=params),
                                        "echo_grpc", pid=pid, database_url=database)
                    half = full.rps / 2 / o.processes
                    self.measure("create_half_load", self.job(
                        "create", m.grpc, params={**params, "run_id": params["run_id"] + "h"},
                        rate=half, concurrency=max(o.concurrency, 64)), "echo_grpc", pid=pid)
                if "replay" not in o.skip:
                    self.measure("replay", self.job("replay", m.grpc, params={
                        **params, "seeds": len(ids), "seed_prefix": seed_prefix}), "echo_grpc",
                        pid=pid, database_url=database)
                if "get" not in o.skip:
                    self.measure("get", self.job("get", m.grpc, params={**params, "ids": ids}),
                                 "echo_grpc", pid=pid, database_url=database)
                if "list" not in o.skip:
                    self.measure("list_page_20", self.job("list", m.grpc, params={
                        **params, "page_size": 20}), "echo_grpc", page_size=20, pid=pid)
                if "callbacks" not in o.skip:
                    self.callbacks(m, params, seed_prefix)
        finally:
            asyncio.run(servers.drop_database(dsn, database))

    def callbacks(self, m: servers.Malipo, params: dict[str, Any], seed_prefix: str) -> None:
        o = self.o
        targets = asyncio.run(_processing(m.database_url, seed_prefix))
        # One payment per callback: enough for the run at the target (0.3x the aiohttp
        # baseline), at least --min-callbacks.
        base = self.stats.get("echo_aiohttp")
        need = max(o.min_callbacks,
                   int(0.3 * base.rps * (o.warmup + o.seconds)) if base else 0)
        topped, per_s = 0, 0.0
        while len(targets) < need and topped < 10:
            # Not enough PROCESSING payments yet (create skipped or slow): make more,
            # unmeasured, with the same generator, for as long as the last round's rate says.
            seconds = min(30.0, max(2.0, (need - len(targets)) / per_s + 1)) if per_s else 3.0
            made = loadgen.run(self.job("create", m.grpc, seconds=seconds, params={
                **params, "run_id": f"{params['run_id']}t{topped}"}), o.processes)
            per_s = max(made.rps, 20.0)
            targets = asyncio.run(_processing(m.database_url, seed_prefix))
            topped += 1
        if topped:
            print(f"{'':<22} {len(targets)} PROCESSING payments made for the callbacks",
                  flush=True)
        split = [{"payments": targets[i::o.processes]} for i in range(o.processes)]
        stats = self.measure("callbacks", self.job("callback", m.callback_url(), params={
            "secret": servers.CALLBACK_SECRET}), "echo_aiohttp", split=split,
            available_payments=len(targets), pid=m.proc.popen.pid,
            database_url=m.database_url)
        applied = asyncio.run(_applied(m.database_url))
        self.results["callbacks"]["applied_total"] = applied
        print(f"{'':<22} {applied} callbacks applied in total "
              f"({stats.requests} measured after warmup)", flush=True)
        if applied >= len(targets):
            print(f"{'':<22} every payment got its callback before the end: the rate is "
                  f"over {stats.seconds} s (--min-callbacks for more)", flush=True)

    @contextlib.contextmanager
    def profiled(self, name: str, pid: int | None, seconds: float) -> Generator[None]:
        """py-spy the server (pid) for the whole scenario when `--profile` names it; only
        samples holding the GIL, so idle waits on the database or the network do not count."""
        if pid is None or name not in self.o.profile:
            yield
            return
        if self.o.profiler == "perf":
            with self.perf_recorded(name, pid, seconds):
                yield
            return
        py_spy = shutil.which("py-spy") or str(ROOT / ".venv" / "bin" / "py-spy")
        if not Path(py_spy).exists():
            print("profile skipped: py-spy is not installed (pip install '.[bench]')")
            yield
            return
        self.o.out.mkdir(parents=True, exist_ok=True)
        base = self.o.out / f"profile-{name}"
        spies = [subprocess.Popen([py_spy, "record", "--pid", str(pid), "--subprocesses", "--gil",
                                   "--duration", str(int(seconds + 1)), "--rate", "200",
                                   "--format", fmt, "--output", f"{base}.{ext}", "--nonblocking"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for fmt, ext in (("flamegraph", "svg"), ("raw", "txt"))]
        time.sleep(0.5)
        try:
            yield
        finally:
            for spy in spies:
                spy.wait(60)
            print(f"{'':<22} profile: {base}.svg and {base}.txt (collapsed stacks)", flush=True)

    @contextlib.contextmanager
    def perf_recorded(self, name: str, pid: int, seconds: float) -> Generator[None]:
        """`perf record` of the server for the scenario, then a report by thread and library:
        where py-spy can only name the Python frame above compiled code, this splits the
        interpreter, the kernel and each extension."""
        perf = shutil.which("perf")
        if perf is None:
            print("profile skipped: perf is not installed")
            yield
            return
        self.o.out.mkdir(parents=True, exist_ok=True)
        base = self.o.out / f"profile-{name}"
        recording = subprocess.Popen(
            [perf, "record", "-F", "499", "-g", "-p", str(pid), "-o", f"{base}.perf.data",
             "--", "sleep", str(int(seconds + 1))],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            yield
        finally:
            recording.wait(60)
            with open(f"{base}.perf.txt", "w") as report:
                for sort in ("comm,dso", "dso,symbol"):
                    subprocess.run([perf, "report", "-i", f"{base}.perf.data", "--no-children",
                                    "-g", "none", "--sort", sort, "--stdio"],
                                   stdout=report, stderr=subprocess.DEVNULL, check=False)
            print(f"{'':<22} profile: {base}.perf.txt ({base}.perf.data for perf report)",
                  flush=True)

    def workers(self, dsn: str) -> None:
        """One worker, then two, each on a fresh database, with the load generator pinned to
        one core (the last) so the server's processes have the others: the ratio is what a
        second worker adds where there is a core for it."""
        if "workers" in self.o.skip:
            return
        if not servers.workers_supported():
            reason = "`malipo serve --workers` does not exist in this checkout"
            self.skipped["create_workers_2"] = reason
            print(f"create_workers_2       skipped: {reason}", flush=True)
            return
        pinned = loadgen_cpus()
        rates: dict[int, float] = {}
        for workers in (1, 2):
            database = asyncio.run(servers.create_database(dsn))
            try:
                with servers.malipo(database, workers=workers) as m:
                    params = {"api_key": m.api_key, "run_id": uuid.uuid4().hex[:8]}
                    job = replace(self.job("create", m.grpc, params=params), cpus=pinned)
                    rates[workers] = self.measure(
                        f"create_workers_{workers}", job, "echo_grpc", workers=workers,
                        loadgen_cpus=list(pinned), pid=m.proc.popen.pid,
                        database_url=database).rps
            finally:
                asyncio.run(servers.drop_database(dsn, database))
        if rates[1]:
            ratio = round(rates[2] / rates[1], 3)
            self.results["create_workers_2"]["ratio_to_one_worker"] = ratio
            print(f"{'':<22} {ratio:.2f}x one worker (load generator pinned to CPU "
                  f"{pinned or 'any'})", flush=True)

    def drift(self) -> None:
        """The echo baseline again at the end: how much the machine changed during the run."""
        if "drift" in self.o.skip or "echo_grpc" not in self.stats:
            return
        with servers.baseline("grpc") as (address, pid):
            end = self.measure("echo_grpc_end", self.job("echo", address), "echo_grpc", pid=pid)
        self.results["echo_grpc_end"]["note"] = (
            "same as echo_grpc, measured last; a ratio far from 1.0 means the machine's load "
            "changed during the run and the other ratios are that much less certain")
        del end

    def fanout(self, dsn: str) -> None:
        if "fanout" in self.o.skip or not self.o.fanout:
            return
        from tests.bench.stream_fanout import summary_line

        env = {**os.environ, "DATABASE_URL": dsn}
        args = [sys.executable, "-m", "tests.bench.stream_fanout", "--json", "--subscribers",
                *map(str, self.o.fanout), "--seconds", str(self.o.fanout_seconds),
                "--warmup", str(max(1.0, self.o.warmup)), "--rate", str(self.o.fanout_rate)]
        out = subprocess.run(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             check=False)  # its progress (stderr) shows as it goes
        for line in out.stdout.splitlines():
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            name = f"watch_fanout_{r['subscribers']}"
            self.results[name] = r
            print(summary_line(r), flush=True)
        if out.returncode != 0:
            reason = f"stream_fanout exited {out.returncode} (its error is above)"
            self.skipped["watch_fanout"] = reason
            print(f"watch_fanout           failed: {reason}", flush=True)

    # -- output -----------------------------------------------------------------------

    def write(self, started: float, command: str) -> None:
        from tests.bench import plots

        out = self.o.out
        out.mkdir(parents=True, exist_ok=True)
        doc = {"command": command, "machine": machine(), "started": started,
               "duration_s": round(time.time() - started, 1),
               "options": {"seconds": self.o.seconds, "warmup": self.o.warmup,
                           "processes": self.o.processes, "concurrency": self.o.concurrency},
               "results": self.results, "skipped": self.skipped}
        (out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
        written = plots.write(self.stats, out)
        print(f"\nresults: {out / 'results.json'}  plots: {', '.join(p.name for p in written)}")


async def _seed(m: servers.Malipo, prefix: str) -> list[str]:
    md = (("authorization", f"Bearer {m.api_key}"),)
    async with grpc.aio.insecure_channel(m.grpc) as channel:
        from malipo.payments.v1.payment_service_pb2_grpc import PaymentServiceStub

        stub = PaymentServiceStub(channel)
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> str:
            async with sem:
                r = await stub.CreatePayment(requests.create(f"{prefix}-{i}", i), metadata=md,
                                             timeout=30)
                return r.payment.id

        return list(await asyncio.gather(*(one(i) for i in range(SEEDS))))


async def _processing(url: str, seed_prefix: str) -> list[list[Any]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT id, provider_reference, amount_minor, currency FROM payments "
            "WHERE status = 'PROCESSING' AND NOT starts_with(idempotency_key, $1) ORDER BY id",
            seed_prefix)
    finally:
        await conn.close()
    return [[r["id"], r["provider_reference"], r["amount_minor"], r["currency"]] for r in rows]


async def _applied(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(
            "SELECT count(*) FROM callback_events WHERE outcome = 'APPLIED'"))
    finally:
        await conn.close()


def same_speed(ratio: float, our_client: float | None,
               their_client: float | None) -> float | None:
    """`ratio` (requests per second, ours over a floor's that sends the same messages) as it
    would be had the machine run as fast in our window as in the floor's, for reading beside
    the targets, not instead of them.

    Every scenario keeps these 2 cores saturated, so a rate is the cores over the CPU a
    request costs in all, and on this shared machine the same work costs up to twice the CPU
    time from one minute to the next. The load generator's CPU per request is the same work
    on both sides, so the ratio of the two is that slowdown, and multiplying by it takes it
    out. In a run where the machine held its speed (the echo baseline 1.06x at the end) the
    load generator's cost per request on Malipo's side was 0.86x-1.03x the floor's (create
    0.99x, get 0.95x, replay 1.03x, callbacks 0.86x): the yardstick holds within 14%, and
    where it is off, mostly against Malipo. `our_client`, `their_client`: the load
    generator's CPU per request on each side."""
    if not our_client or not their_client:
        return None
    return round(ratio * our_client / their_client, 3)


# The targets, each a ratio measured in one run (the summary takes the median over --repeat).
TARGETS: list[tuple[str, str, str, float]] = [
    ("create", "ratio_floor", ">=", 0.6),
    ("create", "server_cpu_ratio_floor", "<=", 2.0),
    ("replay", "ratio_floor", ">=", 0.8),
    ("get", "ratio_floor", ">=", 0.8),
    ("callbacks", "ratio_floor", ">=", 0.6),
    ("create_workers_2", "ratio_to_one_worker", ">=", 1.3),
    *((f"watch_fanout_{streams}", measure, "<=", limit) for streams in (1000, 10000)
      for measure, limit in (("p99_ratio_floor", 1.5), ("rss_ratio_floor", 1.2))),
]


def met(value: float, op: str, target: float) -> bool:
    """Whether `value` meets a target of TARGETS (`op`: ">=" or "<=")."""
    return value >= target if op == ">=" else value <= target


def _median_of(runs: list[dict[str, dict[str, Any]]], scenario: str,
               key: str) -> tuple[float, list[float]] | None:
    values = sorted(r[scenario][key] for r in runs if r.get(scenario, {}).get(key) is not None)
    if not values:
        return None
    return round(statistics.median(values), 3), values


def summary(runs: list[dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each target's median over the runs that measured it, and whether it is met."""
    rows: list[dict[str, Any]] = []
    for scenario, key, op, target in TARGETS:
        found = _median_of(runs, scenario, key)
        if found is None:
            continue
        median, values = found
        rows.append({"scenario": scenario, "measure": key, "target": f"{op} {target}",
                     "median": median, "runs": values, "met": met(median, op, target)})
    return rows


def readings(runs: list[dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each ratio as at the floor's speed (same_speed), its median over the runs: printed
    under the targets, for reading, not held to a target."""
    rows: list[dict[str, Any]] = []
    for scenario, floor in SAME_REQUESTS.items():
        found = _median_of(runs, scenario, "ratio_same_speed")
        if found is not None:
            rows.append({"scenario": scenario, "measure": "ratio_same_speed", "vs": floor,
                         "median": found[0], "runs": found[1]})
    return rows


def main() -> None:
    opts = parse()
    command = "python -m tests.bench.run " + " ".join(sys.argv[1:])
    print(f"machine: {json.dumps(machine())}", flush=True)
    print(f"load: {opts.processes} processes x {opts.concurrency} in flight, "
          f"{opts.warmup}s warmup + {opts.seconds}s per scenario", flush=True)
    dsn = servers.server_dsn()
    runs: list[dict[str, dict[str, Any]]] = []
    for k in range(opts.repeat):
        started = time.time()
        if opts.repeat > 1:
            print(f"\n-- run {k + 1} of {opts.repeat}", flush=True)
        bench = Bench(replace(opts, out=opts.out / f"run-{k + 1}") if opts.repeat > 1
                      else opts)
        try:
            bench.baselines()
            bench.floors(dsn)
            bench.malipo(dsn)
            bench.workers(dsn)
            bench.fanout(dsn)
            bench.drift()
        finally:
            bench.write(started, command.strip())
        runs.append(bench.results)
    rows = summary(runs)
    print(f"\ntargets (median of {len(runs)} run{'s' * (len(runs) > 1)}):")
    for row in rows:
        print(f"  {row['scenario']:<18} {row['measure']:<24} {row['median']:>7.3f}  "
              f"target {row['target']:<7} {'met' if row['met'] else 'MISSED'}  "
              f"runs {row['runs']}", flush=True)
    seen = readings(runs)
    if seen:
        print("as at the floor's speed (the load generator's CPU per request as the yardstick; "
              "for reading, not targets):")
    for row in seen:
        print(f"  {row['scenario']:<18} {'x ' + row['vs']:<24} {row['median']:>7.3f}  "
              f"runs {row['runs']}", flush=True)
    opts.out.mkdir(parents=True, exist_ok=True)
    (opts.out / "summary.json").write_text(json.dumps(
        {"command": command.strip(), "targets": rows, "at_floor_speed": seen}, indent=2)
        + "\n")


if __name__ == "__main__":
    main()
