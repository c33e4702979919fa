# pyright: basic
"""`malipo serve --workers 2`: two processes share both ports (SO_REUSEPORT), one database."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from malipo.bootstrap import SERVICE_NAME
from malipo.payments.v1.payment_service_pb2_grpc import PaymentServiceStub
from tests.harness import TENANT_KEYS, auth, create_request, free_port

ROOT = Path(__file__).resolve().parents[2]


def spawn(env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "malipo.cli", "serve", "--workers", "2"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)


async def worker(http: str) -> str:
    """The index of whichever worker takes this new connection."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s, \
            s.get(f"http://{http}/metrics") as resp:
        text = await resp.text()
    return next(x.labels["worker"] for f in text_string_to_metric_families(text)
                for x in f.samples if x.name == "malipo_worker_info")


async def test_two_workers_share_the_ports_and_stop_together(database_url: str,
                                                             tmp_path: Path) -> None:
    grpc_address, http = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    env = {**os.environ, "DATABASE_URL": database_url, "MALIPO_GRPC_LISTEN": grpc_address,
           "MALIPO_HTTP_LISTEN": http, "MALIPO_DATA_DIR": str(tmp_path / "data"),
           "MALIPO_API_KEYS": ",".join(f"{t}={k}" for t, k in TENANT_KEYS.items()),
           "MALIPO_DB_POOL_MAX": "4", "PYTHONPATH": str(ROOT),
           # a real DATABASE_URL serves only configured accounts
           "MALIPO_ACCOUNTS": '[{"provider": "simulator"}]'}
    log = tmp_path / "serve.log"
    parent = spawn(env, log, tmp_path)
    try:
        deadline = time.monotonic() + 45
        workers: set[str] = set()
        while len(workers) < 2:  # both workers answer on the one HTTP port
            assert parent.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, (workers, log.read_text()[-3000:])
            try:
                workers.add(await worker(http))
            except aiohttp.ClientError:
                await asyncio.sleep(0.2)
        async with grpc.aio.insecure_channel(grpc_address) as channel:
            health: Any = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            created = await PaymentServiceStub(channel).CreatePayment(
                create_request("workers-1"), metadata=auth(), timeout=10)
            assert created.payment.id.startswith("pay_")
    finally:
        parent.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(parent.wait, 20)
    assert code == 0, log.read_text()[-3000:]
    assert "2 workers on" in log.read_text()
    assert workers == {"0", "1"}
