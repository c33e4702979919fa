"""Run a client's tool (node, go, pip, npm) without blocking the event loop that serves it."""

from __future__ import annotations

import asyncio
from pathlib import Path


async def run(*argv: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
              timeout: float = 300) -> tuple[int, str]:
    """The exit code and the output (stdout and stderr together); killed after `timeout`."""
    proc = await asyncio.create_subprocess_exec(
        *[str(a) for a in argv], cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode()
