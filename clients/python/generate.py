"""Generate the Python stubs of malipo.payments.v1 from protos/ (or check they are fresh).

Run with the dev environment: `python clients/python/generate.py [--check]`.
Generated files are never edited by hand; `--check` exits 1 when they differ from a fresh
generation, and a test runs it so stale stubs fail the suite.

It also keeps the client's dependency floors in clients/python/pyproject.toml equal to what
the generated code refuses to run below: the protobuf runtime may not be older than the
gencode version stamped in each *_pb2.py, and grpcio not older than GRPC_GENERATED_VERSION
in each *_pb2_grpc.py. `--check` fails when the declared floors differ;
tests/clients/test_client_artefacts.py installs the client alone at exactly these floors.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos"
OUT = ROOT / "clients" / "python" / "src"
PACKAGE = Path("malipo") / "payments" / "v1"
PYPROJECT = ROOT / "clients" / "python" / "pyproject.toml"
# Not stamped in the gencode: the first googleapis-common-protos whose own protobuf range
# admits protobuf 7 (1.73.0 still caps it below 7). The floors test installs it with the
# protobuf floor, so a wrong value fails there.
GOOGLEAPIS_COMMON_PROTOS_FLOOR = "1.73.1"
_PROTOBUF_STAMP = re.compile(r"^# Protobuf Python Version: (\d+\.\d+\.\d+)$", re.M)
_GRPC_STAMP = re.compile(r"^GRPC_GENERATED_VERSION = '(\d+\.\d+\.\d+)'$", re.M)
_FLOOR = re.compile(r'^  "(grpcio|protobuf|googleapis-common-protos)>=[^"]*",$', re.M)


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


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _stamps(files: list[Path], pattern: re.Pattern[str], suffix: str) -> str:
    found = {m.group(1) for p in files if p.name.endswith(suffix)
             for m in [pattern.search(p.read_text())] if m}
    if not found:
        raise SystemExit(f"no version stamp in the generated *{suffix}: has the generator changed?")
    return max(found, key=_version)


def floors(stubs: list[Path]) -> dict[str, str]:
    """The lowest versions the generated stubs run on, from the generator's own stamps."""
    return {
        "grpcio": _stamps(stubs, _GRPC_STAMP, "_pb2_grpc.py"),
        "protobuf": _stamps(stubs, _PROTOBUF_STAMP, "_pb2.py"),
        "googleapis-common-protos": GOOGLEAPIS_COMMON_PROTOS_FLOOR,
    }


def with_floors(pyproject: str, wanted: dict[str, str]) -> str:
    """pyproject.toml's text with each dependency line `"name>=..."` set to its floor."""
    updated = _FLOOR.sub(lambda m: f'  "{m.group(1)}>={wanted[m.group(1)]}",', pyproject)
    missing = [n for n in wanted if f'"{n}>={wanted[n]}"' not in updated]
    if missing:
        raise SystemExit(f"{PYPROJECT}: no dependency line for {', '.join(missing)}")
    return updated


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="fail when the stubs are stale")
    args = parser.parse_args()
    if not args.check:
        for old in (OUT / PACKAGE).glob("*_pb2*.py*"):
            old.unlink()
        stubs = generate(OUT)
        PYPROJECT.write_text(with_floors(PYPROJECT.read_text(), floors(stubs)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        names = {p.name for p in fresh}
        current = {p.name for p in (OUT / PACKAGE).glob("*_pb2*.py*")}
        stale = sorted(names ^ current) + sorted(
            p.name for p in fresh
            if p.name in current and not filecmp.cmp(p, OUT / PACKAGE / p.name, shallow=False)
        )
        wanted = floors(fresh)
        declared = PYPROJECT.read_text()
        wrong_floors = declared != with_floors(declared, wanted)
    if stale:
        print("stale generated stubs, run `make proto`:", ", ".join(stale))
    if wrong_floors:
        print(f"{PYPROJECT.relative_to(ROOT)}: dependency floors differ from the generated "
              f"code's {wanted}, run `make proto`")
    return 1 if stale or wrong_floors else 0


if __name__ == "__main__":
    sys.exit(main())
