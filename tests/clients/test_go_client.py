"""The generated Go client (clients/go): fresh, and its example run against a real server.

No Go module proxy is reachable here, so the example is built in GOPATH mode against the Go
sources Debian packages (`make test` installs them; see clients/go/README.md).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.clients.test_typescript_client import differing
from tests.conftest import ROOT
from tests.harness import TENANT_KEYS, Running

GO = ROOT / "clients" / "go"
BUF = ROOT / "clients" / "typescript" / "node_modules" / ".bin" / "buf"
DEBIAN_GOPATH = "/usr/share/gocode"
MODULE = "malipo.dev/clients/go"

# Only where `make go-tools` could install Debian's Go packages (root + apt): elsewhere
# there is no Go toolchain nor module proxy to build with.
pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("go", "gofmt", "protoc-gen-go", "protoc-gen-go-grpc")),
    reason="no Go toolchain and plugins here (make go-tools installs them on Debian as root)",
)


def test_generated_go_is_fresh() -> None:
    for plugin in ("protoc-gen-go", "protoc-gen-go-grpc"):
        assert shutil.which(plugin), f"{plugin} missing: see clients/go/README.md"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(BUF), "generate", "-o", tmp], cwd=GO, check=True)
        stale = differing(Path(tmp) / "gen", GO / "gen")
    assert stale == [], "stale: run `buf generate` in clients/go (or `make proto`)"


def test_go_sources_are_gofmt_clean() -> None:
    gofmt = shutil.which("gofmt")
    assert gofmt, "gofmt missing: see clients/go/README.md"
    result = subprocess.run([gofmt, "-l", "examples"], cwd=GO, capture_output=True,
                            text=True, check=True)
    assert result.stdout == ""


def build_example(gopath: Path) -> Path:
    go = shutil.which("go")
    assert go, "go missing: see clients/go/README.md"
    link = gopath / "src" / MODULE
    link.parent.mkdir(parents=True)
    link.symlink_to(GO)
    binary = gopath / "create_and_watch"
    env = {**os.environ, "GO111MODULE": "off", "GOFLAGS": "", "GOPROXY": "off",
           "GOPATH": f"{gopath}{os.pathsep}{DEBIAN_GOPATH}"}
    result = subprocess.run([go, "build", "-o", str(binary), "./examples/create_and_watch"],
                            cwd=link, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return binary


async def test_go_example_creates_and_watches_until_final(malipo: Running) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        binary = await asyncio.to_thread(build_example, Path(tmp))
        proc = await asyncio.create_subprocess_exec(
            str(binary), malipo.app.grpc_address, TENANT_KEYS["acme"],
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    lines = out.decode().splitlines()
    assert proc.returncode == 0, lines
    moves = [line.split(" ", 1)[1] for line in lines]
    assert moves == ["STATUS_UNSPECIFIED -> STATUS_PENDING",
                     "STATUS_PENDING -> STATUS_PROCESSING",
                     "STATUS_PROCESSING -> STATUS_SUCCEEDED"]
