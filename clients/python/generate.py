"""Generate the Python stubs of malipo.payments.v1 from protos/ (or check they are fresh).

Run with the dev environment: `python clients/python/generate.py [--check]`.
Generated files are never edited by hand; `--check` exits 1 when they differ from a fresh
generation, and a test runs it so stale stubs fail the suite.
"""

from __future__ import annotations

import argparse
import filecmp
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos"
OUT = ROOT / "clients" / "python" / "src"
PACKAGE = Path("malipo") / "payments" / "v1"


def generate(out: Path) -> list[Path]:
    protos = sorted((PROTOS / PACKAGE).glob("*.proto"))
    bin_dir = Path(sys.executable).parent
    subprocess.run(  # noqa: S603 - fixed argv, our own protos
        [
            sys.executable, "-m", "grpc_tools.protoc",
            f"-I{PROTOS}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
            f"--mypy_grpc_out={out}",
            *[str(p.relative_to(PROTOS)) for p in protos],
        ],
        check=True,
    )
    return sorted((out / PACKAGE).glob("*_pb2*.py*"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="fail when the stubs are stale")
    args = parser.parse_args()
    if not args.check:
        for old in (OUT / PACKAGE).glob("*_pb2*.py*"):
            old.unlink()
        generate(OUT)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        names = {p.name for p in fresh}
        current = {p.name for p in (OUT / PACKAGE).glob("*_pb2*.py*")}
        stale = sorted(names ^ current) + sorted(
            p.name for p in fresh
            if p.name in current and not filecmp.cmp(p, OUT / PACKAGE / p.name, shallow=False)
        )
    if stale:
        print("stale generated stubs, run `make proto`:", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
