"""The Go client (clients/go): generated code fresh, the helper package's tests and the
example run against a real server.

No Go module proxy is reachable here, so both are built in GOPATH mode with the Go toolchain
and sources that `make go-tools` unpacks from Debian's packages into .go-tools (see
clients/go/README.md).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.clients.processes import run
from tests.clients.test_typescript_client import differing
from tests.conftest import ROOT
from tests.harness import TENANT_KEYS, Running

GO = ROOT / "clients" / "go"
BUF = ROOT / "clients" / "typescript" / "node_modules" / ".bin" / "buf"
GO_TOOLS = ROOT / ".go-tools"
GOROOT = GO_TOOLS / "usr" / "lib" / "go-1.24"
GO_SOURCES = GO_TOOLS / "usr" / "share" / "gocode"
MODULE = "malipo.dev/clients/go"

# Only where `make go-tools` could fetch Debian's packages (root + apt): elsewhere there is
# no Go toolchain nor module proxy to build with.
needs_plugins = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("protoc-gen-go", "protoc-gen-go-grpc")),
    reason="no protoc-gen-go/protoc-gen-go-grpc here (make go-tools installs them on Debian)")
needs_go = pytest.mark.skipif(
    not (GOROOT / "bin" / "go").exists(),
    reason="no Go toolchain in .go-tools (make go-tools fetches it from Debian's packages)")


@needs_plugins
def test_generated_go_is_fresh() -> None:
    for plugin in ("protoc-gen-go", "protoc-gen-go-grpc"):
        assert shutil.which(plugin), f"{plugin} missing: see clients/go/README.md"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(BUF), "generate", "-o", tmp], cwd=GO, check=True)
        stale = differing(Path(tmp) / "gen", GO / "gen")
    assert stale == [], "stale: run `buf generate` in clients/go (or `make proto`)"


@needs_go
def test_go_sources_are_gofmt_clean_and_vetted() -> None:
    result = subprocess.run([str(GOROOT / "bin" / "gofmt"), "-l", "examples", "malipo"],
                            cwd=GO, capture_output=True, text=True, check=True)
    assert result.stdout == ""
    with tempfile.TemporaryDirectory() as tmp:
        link, env = gopath(Path(tmp))
        result = subprocess.run([str(GOROOT / "bin" / "go"), "vet", "./malipo",
                                 "./examples/..."], cwd=link, env=env, capture_output=True,
                                text=True, check=False)
    assert result.returncode == 0, result.stderr


def gopath(root: Path) -> tuple[Path, dict[str, str]]:
    """A GOPATH in `root` holding this module (a link) beside the fetched Go sources."""
    link = root / "src" / MODULE
    link.parent.mkdir(parents=True)
    link.symlink_to(GO)
    env = {**os.environ, "GOROOT": str(GOROOT), "GOTOOLCHAIN": "local", "GO111MODULE": "off",
           "GOFLAGS": "", "GOPROXY": "off", "GOPATH": f"{root}{os.pathsep}{GO_SOURCES}"}
    return link, env


def build_example(root: Path) -> Path:
    link, env = gopath(root)
    binary = root / "create_and_watch"
    result = subprocess.run([str(GOROOT / "bin" / "go"), "build", "-o", str(binary),
                             "./examples/create_and_watch"],
                            cwd=link, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return binary


@needs_go
async def test_go_helper_tests_pass_against_the_real_server(malipo: Running) -> None:
    """clients/go/malipo's own tests: deadlines, same-key retries honouring RetryInfo
    (through a proxy that drops connections), decoded details, a watch that resumes."""
    with tempfile.TemporaryDirectory() as tmp:
        link, env = gopath(Path(tmp))
        env |= {"MALIPO_ADDRESS": malipo.app.grpc_address, "MALIPO_API_KEY": TENANT_KEYS["acme"]}
        code, text = await run(GOROOT / "bin" / "go", "test", "-count=1", "-v", "./malipo",
                               cwd=link, env=env, timeout=300)
    assert code == 0, text
    assert text.count("--- PASS: ") == 8 and "--- FAIL" not in text, text


@needs_go
async def test_go_example_creates_and_watches_until_final(malipo: Running) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        binary = await asyncio.to_thread(build_example, Path(tmp))
        code, out = await run(binary, malipo.app.grpc_address, TENANT_KEYS["acme"], timeout=30)
    lines = out.splitlines()
    assert code == 0, lines
    moves = [line.split(" ", 1)[1] for line in lines]
    assert moves == ["STATUS_UNSPECIFIED -> STATUS_PENDING",
                     "STATUS_PENDING -> STATUS_PROCESSING",
                     "STATUS_PROCESSING -> STATUS_SUCCEEDED"]
