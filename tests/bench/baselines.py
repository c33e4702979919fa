"""The baselines every figure is divided by: a bare grpc.aio echo server and a bare aiohttp
handler, each one process on uvloop like `malipo serve`, doing no work but answering.

    python -m tests.bench.baselines grpc|http HOST:PORT
"""

from __future__ import annotations

import asyncio
import sys

import grpc
from aiohttp import web


async def _echo(request: bytes, _context: object) -> bytes:
    return request


async def grpc_echo(listen: str) -> None:
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler("bench.Echo", {
        "Echo": grpc.unary_unary_rpc_method_handler(_echo),  # bytes in, the same bytes out
    })
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(listen)
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


async def http_handler(listen: str) -> None:
    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=200, body=b'{"status":"ok"}', content_type="application/json")

    app = web.Application()
    app.router.add_post("/callbacks/{provider}/{account}", ok)
    await start_http(app, listen)
    print("ready", flush=True)
    await asyncio.Event().wait()


async def start_http(app: web.Application, listen: str) -> web.AppRunner:
    """Serve `app` on host:port, with no access log (the bench's servers all do so)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = listen.rsplit(":", 1)
    await web.TCPSite(runner, host, int(port)).start()
    return runner


def main() -> None:
    kind, listen = sys.argv[1], sys.argv[2]
    import uvloop

    uvloop.run(grpc_echo(listen) if kind == "grpc" else http_handler(listen))


if __name__ == "__main__":
    main()
