# pyright: basic
"""Run `malipo serve` as a real subprocess against the test database and a fake gateway."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import grpc

from malipo.payments.v1.payment_service_pb2_grpc import PaymentServiceStub
from malipo.store.migrations import migrate
from tests.conftest import with_database
from tests.harness import TENANT_KEYS, free_port

MALIPO = str(Path(sys.executable).with_name("malipo"))


@dataclass
class Served:
    proc: asyncio.subprocess.Process
    grpc_address: str
    http_address: str
    log_path: Path

    def channel(self) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(self.grpc_address)

    def stub(self, channel: grpc.aio.Channel) -> Any:
        return PaymentServiceStub(channel)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)

    def term(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    async def wait(self, timeout: float = 15.0) -> int:
        return await asyncio.wait_for(self.proc.wait(), timeout)


def gateway_config(path: Path, base_url: str, *, timeout_s: str = "30") -> Path:
    path.write_text(f"""
[[accounts]]
provider = "gateway"
name = "default"
[accounts.settings]
base_url = "{base_url}"
public_id = "public-test"
merchant_id = "merchant-test"
secret_key = "secret-test"
timeout_s = "{timeout_s}"

[policies.gateway]
start_after_s = 0.3
interval_s = 0.3
backoff = 1.0
max_interval_s = 1.0
submit_grace_s = 1.0
submit_give_up_s = 60.0
""")
    return path


async def serve(database_url: str, config: Path, workdir: Path, *,
                http_port: int | None = None, name: str = "serve") -> Served:
    """`malipo serve` on free ports. A port free when picked can be taken before the server
    binds it (another process's outgoing connection draws from the same range): then the
    start is tried again on new ports, unless the caller fixed the callback port."""
    retries = 0 if http_port is not None else 2
    for _ in range(retries):
        with contextlib.suppress(_PortTaken):
            return await _serve_once(database_url, config, workdir, http_port, name)
    return await _serve_once(database_url, config, workdir, http_port, name)


class _PortTaken(AssertionError):
    pass


async def _serve_once(database_url: str, config: Path, workdir: Path, http_port: int | None,
                      name: str) -> Served:
    grpc_port = free_port()
    http_port = http_port or free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "MALIPO_CONFIG": str(config),
           "MALIPO_GRPC_LISTEN": f"127.0.0.1:{grpc_port}",
           "MALIPO_HTTP_LISTEN": f"127.0.0.1:{http_port}",
           "MALIPO_DATA_DIR": str(workdir / "data"), "MALIPO_RECONCILE_INTERVAL_S": "0.1",
           "MALIPO_API_KEYS": ",".join(f"{t}={k}" for t, k in TENANT_KEYS.items())}
    log_path = workdir / f"{name}-{grpc_port}.log"
    log = log_path.open("wb")
    proc = await asyncio.create_subprocess_exec(MALIPO, "serve", env=env, stdout=log,
                                                stderr=asyncio.subprocess.STDOUT)
    served = Served(proc, f"127.0.0.1:{grpc_port}", f"127.0.0.1:{http_port}", log_path)
    for _ in range(300):
        if b"Malipo gRPC" in log_path.read_bytes():
            return served
        if proc.returncode is not None:
            break
        await asyncio.sleep(0.05)
    output = log_path.read_text()[-3000:]
    error = _PortTaken if "already in use" in output.lower() else AssertionError
    raise error("malipo serve did not start:\n" + output)


async def create_database(server_dsn: str) -> str:
    """A new migrated database on `server_dsn`; its URL."""
    name = "t_" + uuid.uuid4().hex[:16]
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(server_dsn, name)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return url


@contextlib.asynccontextmanager
async def fresh_database(server_dsn: str) -> AsyncIterator[str]:
    """A new migrated database on `server_dsn`, dropped afterwards.

    For tests that run several processes and fakes against one database: the fakes' ids start
    from the same number, so a provider reference of an earlier test in a shared database makes
    the service (rightly) flag the next payment REFERENCE_REUSED instead of settling it."""
    url = await create_database(server_dsn)
    try:
        yield url
    finally:
        admin = await asyncpg.connect(server_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path[1:]}" WITH (FORCE)')
        finally:
            await admin.close()


async def status_of(database_url: str, payment_id: str) -> str | None:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("SELECT status FROM payments WHERE id = $1", payment_id)
    finally:
        await conn.close()
