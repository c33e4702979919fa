"""The TypeScript client (clients/typescript) against a real server, with node's own runner.

The node tests start nothing: this module starts Malipo and hands them its address and key.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.clients.processes import run
from tests.conftest import ROOT
from tests.harness import TENANT_KEYS, Running

TS = ROOT / "clients" / "typescript"
BIN = TS / "node_modules" / ".bin"


async def test_node_tests_pass_against_the_real_server(malipo: Running) -> None:
    env = {**os.environ, "MALIPO_ADDRESS": malipo.app.grpc_address,
           "MALIPO_API_KEY": TENANT_KEYS["acme"]}
    node = shutil.which("node")
    assert node is not None
    code, text = await run(node, "--test", "--test-reporter=tap", "test/", cwd=TS, env=env,
                           timeout=120)
    assert code == 0, text
    assert "# fail 0" in text, text
    assert "# pass 13" in text, text


def test_typescript_sources_type_check() -> None:
    result = subprocess.run([str(BIN / "tsc"), "-p", "."], cwd=TS, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def differing(fresh: Path, current: Path) -> list[str]:
    names = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
    have = {p.relative_to(current) for p in current.rglob("*") if p.is_file()}
    return sorted(str(n) for n in names ^ have) + sorted(
        str(n) for n in names & have if not filecmp.cmp(fresh / n, current / n, shallow=False))


def test_generated_typescript_is_fresh() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(BIN / "buf"), "generate", "-o", tmp], cwd=TS, check=True)
        stale = differing(Path(tmp) / "src" / "gen", TS / "src" / "gen")
    assert stale == [], "stale: run `npm run generate` in clients/typescript"
