"""`malipo serve --workers N`: N server processes sharing the gRPC and HTTP ports.

Each worker is a whole Malipo (gRPC server, callback listener, reconciler, relay, hub) bound
with SO_REUSEPORT, so the kernel spreads connections over them; they coordinate only through
PostgreSQL, exactly as replicas in separate pods do. The parent starts the embedded
PostgreSQL once (when DATABASE_URL is unset), migrates once, hands the DSN and one set of API
keys to every worker, forwards SIGINT/SIGTERM, and exits when they have all drained.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
from types import FrameType

import asyncpg

from malipo.config import Settings
from malipo.store.embedded import start_embedded
from malipo.store.migrations import migrate

CHILD_ENV = "MALIPO_WORKER_INDEX"
log = logging.getLogger("malipo.workers")


def _fixed_port(listen: str, what: str) -> None:
    if listen.rsplit(":", 1)[-1] == "0":
        raise SystemExit(f"--workers needs a fixed {what} port: port 0 cannot be shared")


def supervise(settings: Settings) -> int:
    _fixed_port(settings.grpc_listen, "gRPC")
    _fixed_port(settings.http_listen, "HTTP")
    env = dict(os.environ)
    database_url = settings.database_url
    pairs = settings.required_api_key_pairs()
    if not database_url:
        database_url = start_embedded(settings.data_dir / "postgres")
    asyncio.run(_migrate(database_url))
    env["DATABASE_URL"] = database_url
    env["MALIPO_WORKERS"] = str(settings.workers)
    env["MALIPO_GRPC_LISTEN"] = settings.grpc_listen
    env["MALIPO_HTTP_LISTEN"] = settings.http_listen
    env["MALIPO_DATA_DIR"] = str(settings.data_dir)
    if not settings.database_url and not settings.accounts:
        # The embedded development default (bootstrap's): the simulator for its own tenants.
        # Workers are handed DATABASE_URL, so they must be told rather than infer it.
        tenants = sorted({t for t, _ in pairs}) or ["dev"]
        env["MALIPO_ACCOUNTS"] = json.dumps([{"provider": "simulator", "tenants": tenants}])
    if not pairs:
        dev_key = "dev_" + secrets.token_urlsafe(24)
        env["MALIPO_API_KEYS"] = f"dev={dev_key}"
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        key_file = settings.data_dir / "dev-api-key"
        key_file.write_text(dev_key + "\n")
        key_file.chmod(0o600)
        print(f"Development API key (tenant 'dev'): {dev_key}", flush=True)
    children = [
        subprocess.Popen([sys.executable, "-m", "malipo.cli", "serve"],
                         env={**env, CHILD_ENV: str(i)})
        for i in range(settings.workers)
    ]
    print(f"Malipo: {len(children)} workers on {settings.grpc_listen} (gRPC) and "
          f"{settings.http_listen} (HTTP), pids {[c.pid for c in children]}", flush=True)

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    codes = [child.wait() for child in children]
    return max(codes, default=0)


async def _migrate(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        applied = await migrate(conn)
    finally:
        await conn.close()
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))
