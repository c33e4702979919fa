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


def _tree_seconds(pid: int) -> float:
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


def _postgres_seconds() -> float:
    total = 0.0
    for p in psutil.process_iter(["name"]):
        if p.info["name"] in ("postgres", "postmaster"):
            with contextlib.suppress(psutil.NoSuchProcess):
                t = p.cpu_times()
                total += t.user + t.system
    return total


def _machine_seconds() -> float:
    t = psutil.cpu_times()
    return t.user + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)


@dataclass
class CpuUse:
    server: float = 0.0
    database: float = 0.0
    machine: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)

    def per_request(self, requests: int, client: float) -> dict[str, float]:
        """CPU ms per request; `client` is the load generator's CPU seconds, `other` what
        the rest of the machine spent (kernel networking, the bench itself, neighbours)."""
        if requests <= 0:
            return {}
        other = max(0.0, self.machine - self.server - self.database - client)
        return {k: round(v * 1000 / requests, 3) for k, v in
                (("server", self.server), ("database", self.database), ("client", client),
                 ("other", other))}


@contextlib.contextmanager
def accounted(server_pid: int | None) -> Generator[CpuUse]:
    """Count CPU seconds spent during the block by the server's process tree, by every
    PostgreSQL process (a shared server counts others' work too: keep the machine quiet) and
    by the whole machine."""
    use = CpuUse()
    s0 = _tree_seconds(server_pid) if server_pid else 0.0
    d0, m0 = _postgres_seconds(), _machine_seconds()
    try:
        yield use
    finally:
        use.server = (_tree_seconds(server_pid) - s0) if server_pid else 0.0
        use.database = _postgres_seconds() - d0
        use.machine = _machine_seconds() - m0
