"""Where a scenario's CPU went: the server, PostgreSQL, and everything else (the load generator).

Throughput ratios say how fast; these say why. Read from the kernel's per-process counters
around the whole scenario (warmup included), divided by the requests the scenario completed in
that window, so they are milliseconds of CPU per request, not wall time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from dataclasses import dataclass, field

import psutil


def tree_seconds(pid: int) -> float:
    """CPU seconds so far of `pid` and its children (0 once it is gone)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def _role(title: str) -> str:
    """A PostgreSQL process's role from the title it sets ("postgres: walwriter", "postgres:
    user db 127.0.0.1(5000) idle"): client backends are where statements run; the rest is
    background work the statements caused (vacuum, WAL writing, checkpoints)."""
    if not title.startswith("postgres:"):
        return "postmaster"
    head = title.removeprefix("postgres:").strip()
    first, _, rest = head.partition(" ")
    if first.endswith(":"):  # "postgres: <cluster_name>: walwriter" when cluster_name is set
        head = rest
    for role in ("autovacuum", "walwriter", "checkpointer", "background writer",
                 "logical replication"):
        if head.startswith(role):
            return role
    return "backends" if " " in head else "other"


@dataclass
class _PostgresTimes:
    """Each live PostgreSQL process's CPU seconds and role, and what postmasters have reaped
    (a worker or backend that exited during the scenario still counts, as "exited")."""

    live: dict[int, tuple[str, float]]
    reaped: float

    @classmethod
    def now(cls) -> _PostgresTimes:
        live: dict[int, tuple[str, float]] = {}
        reaped = 0.0
        for p in psutil.process_iter(["name", "cmdline", "cpu_times"]):
            if p.info["name"] not in ("postgres", "postmaster") or p.info["cpu_times"] is None:
                continue
            t = p.info["cpu_times"]
            role = _role(" ".join(p.info["cmdline"] or ()))
            live[p.pid] = (role, t.user + t.system)
            if role == "postmaster":
                reaped += t.children_user + t.children_system
        return cls(live, reaped)

    def since(self, before: _PostgresTimes) -> dict[str, float]:
        by_role: dict[str, float] = {}
        for pid, (role, seconds) in self.live.items():
            by_role[role] = by_role.get(role, 0.0) + seconds - before.live.get(pid, ("", 0.0))[1]
        gone = sum(seconds for pid, (_, seconds) in before.live.items() if pid not in self.live)
        by_role["exited"] = max(0.0, self.reaped - before.reaped - gone)
        return by_role


def _machine_seconds() -> float:
    t = psutil.cpu_times()
    return t.user + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)


@dataclass
class CpuUse:
    server: float = 0.0
    database: float = 0.0
    machine: float = 0.0
    database_roles: dict[str, float] = field(default_factory=dict)

    def per_request(self, requests: int, client: float) -> dict[str, float]:
        """CPU ms per request; `client` is the load generator's CPU seconds, `other` what
        the rest of the machine spent (kernel networking, the bench itself, neighbours)."""
        if requests <= 0:
            return {}
        other = max(0.0, self.machine - self.server - self.database - client)
        return {k: round(v * 1000 / requests, 3) for k, v in
                (("server", self.server), ("database", self.database), ("client", client),
                 ("other", other))}

    def database_per_request(self, requests: int) -> dict[str, float]:
        """PostgreSQL's CPU ms per request by process role, the busiest first."""
        if requests <= 0:
            return {}
        return {role: round(seconds * 1000 / requests, 3) for role, seconds in
                sorted(self.database_roles.items(), key=lambda kv: -kv[1]) if seconds > 0}


@contextlib.contextmanager
def accounted(server_pid: int | None) -> Generator[CpuUse]:
    """Count CPU seconds spent during the block by the server's process tree, by every
    PostgreSQL process (a shared server counts others' work too: keep the machine quiet) and
    by the whole machine."""
    use = CpuUse()
    s0 = tree_seconds(server_pid) if server_pid else 0.0
    d0, m0 = _PostgresTimes.now(), _machine_seconds()
    try:
        yield use
    finally:
        use.server = (tree_seconds(server_pid) - s0) if server_pid else 0.0
        use.database_roles = _PostgresTimes.now().since(d0)
        use.database = sum(use.database_roles.values())
        use.machine = _machine_seconds() - m0
