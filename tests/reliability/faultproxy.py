"""A small asyncio TCP proxy that injects faults between the service and what it talks to.

Modes (switch any time; new connections use the mode in force when they open, and
`hold_responses` applies to bytes flowing back at the time they arrive):
  pass       forward both ways (optionally with `latency_s` per chunk)
  drop       accept, then close at once without a byte
  reset      accept, then abort with an RST
  blackhole  accept and read, never forward, never answer
and `hold_responses=True`: requests reach the upstream, its answers are swallowed (the
"provider answered, we never heard it" case), and `stall()` / `resume()`: a network
black-hole for a window on every connection, open or new; bytes wait, nothing is lost, as
TCP retransmits them once the path is back. And `inspect`, a test's hand on single messages:
called with each chunk (see `Inspect`), it may forward it, swallow it, or forward it and then
reset that one connection, so a fault can hit exactly one statement or one answer.

The upstream is a TCP `upstream_host:upstream_port`, or the Unix socket `upstream_path`
(the embedded PostgreSQL listens on one only).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PASS, LOSE, CUT_AFTER = "pass", "lose", "cut_after"
# (the connection's own scratch dict, the chunk, upstream?) -> PASS, LOSE (swallow the chunk
# and reset the connection: it never arrives) or CUT_AFTER (forward it, then reset: it
# arrives, its answer never comes back).
Inspect = Callable[[dict[str, Any], bytes, bool], str]


@dataclass
class _Link:
    """One proxied connection: both of its sockets and what `inspect` keeps about it."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    state: dict[str, Any] = field(default_factory=dict)

    def cut(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                _rst(writer)


@dataclass
class FaultProxy:
    upstream_host: str
    upstream_port: int
    mode: str = "pass"
    upstream_path: str = ""
    latency_s: float = 0.0
    hold_responses: bool = False
    connections: int = 0
    forwarded_requests: int = 0
    inspect: Inspect | None = None
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _flowing: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._flowing.set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut_all()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    def stall(self) -> None:
        """Black-hole every connection, open or new, until `resume()`."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def cut_all(self) -> int:
        """Reset every open connection now (a network cut mid-request); how many were open."""
        open_ = [w for w in self._writers if not w.is_closing()]
        for writer in list(self._writers):
            _rst(writer)
        self._writers.clear()
        return len(open_)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if self.mode == "drop":
                writer.close()
                return
            if self.mode == "reset":
                _rst(writer)
                return
            if self.mode == "blackhole":
                while await reader.read(65536):
                    pass
                return
            await self._flowing.wait()
            if self.upstream_path:
                up_reader, up_writer = await asyncio.open_unix_connection(self.upstream_path)
            else:
                up_reader, up_writer = await asyncio.open_connection(self.upstream_host,
                                                                     self.upstream_port)
            self._writers.add(up_writer)
            link = _Link(writer, up_writer)
            await asyncio.gather(self._pipe(reader, up_writer, link, upstream=True),
                                 self._pipe(up_reader, writer, link, upstream=False))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    link: _Link, *, upstream: bool) -> None:
        try:
            while data := await reader.read(65536):
                if self.latency_s:
                    await asyncio.sleep(self.latency_s)
                await self._flowing.wait()
                if upstream:
                    self.forwarded_requests += 1
                elif self.hold_responses:
                    continue
                action = self.inspect(link.state, data, upstream) if self.inspect else PASS
                if action == LOSE:
                    link.cut()
                    return
                writer.write(data)
                await writer.drain()
                if action == CUT_AFTER:
                    link.cut()
                    return
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()


def _rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
