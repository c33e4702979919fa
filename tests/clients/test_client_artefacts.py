"""What another repository consumes, built by `make clients` and installed as it would be.

The Python wheel goes into a fresh virtualenv with grpcio, protobuf and
googleapis-common-protos at exactly the floors clients/python/pyproject.toml declares
(generate.py derives them from the generated code), then imports the stubs and the helper
and makes calls against a real server. The npm tarball goes into an empty Node project the
same way. Packages come from the configured package index through pip's and npm's caches.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

from tests.clients.processes import run
from tests.conftest import ROOT
from tests.harness import TENANT_KEYS, Running

PYTHON_DIST = ROOT / "clients" / "python" / "dist"
TS_DIST = ROOT / "clients" / "typescript" / "dist"
# The index cannot be asked: nothing was learnt, which must not pass as "installs fine".
UNREACHABLE = re.compile(r"ConnectionError|Max retries exceeded|Temporary failure in name"
                         r"|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|timed out")


@pytest.fixture(scope="module")
def artefacts() -> tuple[Path, Path]:
    """`make clients`, with the dev environment and node_modules taken as they are."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed",
         "-o", "clients/typescript/node_modules/.bin/buf", "clients"],
        cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    wheels = sorted(PYTHON_DIST.glob("malipo_client-*-py3-none-any.whl"))
    tarballs = sorted(TS_DIST.glob("malipo-client-*.tgz"))
    assert len(wheels) == 1 and len(tarballs) == 1, (wheels, tarballs)
    return wheels[0], tarballs[0]


def floors() -> dict[str, str]:
    dependencies = tomllib.loads((ROOT / "clients/python/pyproject.toml").read_text())[
        "project"]["dependencies"]
    found = dict(d.split(">=", 1) for d in dependencies)
    assert set(found) == {"grpcio", "protobuf", "googleapis-common-protos"}, dependencies
    return found


def skip_loudly_if_unreachable(what: str, returncode: int, output: str) -> None:
    if returncode != 0 and UNREACHABLE.search(output):
        message = f"{what}: the package index cannot be reached; NOT checked:\n{output[-2000:]}"
        print(f"\nWARNING: {message}", file=sys.stderr)
        pytest.skip(message)


PYTHON_CALLS = """
import asyncio, json, sys, uuid
from importlib.metadata import version
from malipo.client import MalipoClient, error_details
from malipo.payments.v1 import payment_pb2, payment_service_pb2 as pb
from malipo.payments.v1.money_pb2 import Money

async def main(target, key):
    async with MalipoClient.connect(target, key) as client:
        payment = await client.create_payment(pb.CreatePaymentRequest(
            idempotency_key=f"wheel-{uuid.uuid4()}", provider="simulator",
            amount=Money(amount_minor=1000, currency="KES"),
            customer=payment_pb2.Customer(phone_number="+254712345600")))
        try:
            await client.get_payment("pay_missing")
        except Exception as exc:
            reason = error_details(exc).reason
    print(json.dumps({"status": payment_pb2.Status.Name(payment.status), "reason": reason,
                      "versions": {n: version(n) for n in
                                   ("grpcio", "protobuf", "googleapis-common-protos")}}))

asyncio.run(main(*sys.argv[1:]))
"""


async def test_the_wheel_works_alone_at_its_declared_floors(
        artefacts: tuple[Path, Path], malipo: Running) -> None:
    wheel, _ = artefacts
    wanted = floors()
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        code, out = await run(sys.executable, "-m", "venv", venv)
        assert code == 0, out
        python = venv / "bin" / "python"
        code, out = await run(python, "-m", "pip", "install", "--quiet",
                              "--disable-pip-version-check", wheel,
                              *(f"{name}=={floor}" for name, floor in wanted.items()))
        skip_loudly_if_unreachable("pip install of the wheel at its floors", code, out)
        assert code == 0, out
        code, out = await run(python, "-c", PYTHON_CALLS, malipo.app.grpc_address,
                              TENANT_KEYS["acme"], cwd=Path(tmp))
    assert code == 0, out
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"status": "STATUS_PROCESSING", "reason": "NOT_FOUND", "versions": wanted}


NODE_CALLS = """
import { randomUUID } from "node:crypto";
import { Code, createMalipoClient, MalipoError, Status } from "@malipo/client";

const [address, apiKey] = process.argv.slice(2);
const client = createMalipoClient({ address, apiKey });
const { payment } = await client.createPayment({
  idempotencyKey: `npm-${randomUUID()}`, provider: "simulator",
  amount: { amountMinor: 1000n, currency: "KES" },
  customer: { phoneNumber: "+254712345600" },
});
let reason = "";
try {
  await client.getPayment({ paymentId: "pay_missing" });
} catch (err) {
  reason = err instanceof MalipoError && err.code === Code.NotFound ? err.reason : String(err);
}
client.close();
console.log(JSON.stringify({ status: Status[payment.status], reason }));
"""


async def test_the_npm_tarball_installs_into_another_project_and_calls(
        artefacts: tuple[Path, Path], malipo: Running) -> None:
    _, tarball = artefacts
    npm, node = shutil.which("npm"), shutil.which("node")
    assert npm and node
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "package.json").write_text(json.dumps(
            {"name": "consumer", "private": True, "type": "module"}))
        code, out = await run(npm, "install", "--no-audit", "--no-fund", "--loglevel=error",
                              tarball, cwd=project, env={**os.environ})
        skip_loudly_if_unreachable("npm install of the tarball", code, out)
        assert code == 0, out
        (project / "calls.js").write_text(NODE_CALLS)
        code, out = await run(node, "calls.js", malipo.app.grpc_address, TENANT_KEYS["acme"],
                              cwd=project)
    assert code == 0, out
    assert json.loads(out.strip().splitlines()[-1]) == {"status": "PROCESSING",
                                                         "reason": "NOT_FOUND"}
