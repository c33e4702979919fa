"""The WatchStatus fan-out floor: a bare grpc.aio server-streaming handler that pushes the same
messages to the same streams at the same rate as the benchmark's writer, with no database,
relay, hub, filters, heartbeats or cursors. Malipo's fan-out is held to its p99 and its RSS.

    python -m tests.bench.stream_floor GRPC_LISTEN HTTP_LISTEN      (keys: FLOOR_KEYS env)

FLOOR_KEYS is `tenant=key,...` as MALIPO_API_KEYS. The HTTP side is the benchmark's control:
GET /metrics says how many streams are live (the same gauge line as Malipo's), POST /start
{"start_at", "seconds", "rate", "tenants", "payments"} starts the events, and GET
/logged?since=&until= answers what was sent in that window, as the benchmark reads Malipo's
event log.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import grpc
from aiohttp import web
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from malipo.payments.v1 import events_pb2, money_pb2, payment_pb2
from malipo.payments.v1 import payment_service_pb2 as pb
from tests.bench.baselines import start_http

SERVICE = "malipo.payments.v1.PaymentService"
PROVIDER_PAYLOAD = {"event_id": "SIM-0000:SUCCEEDED", "status": "SUCCEEDED",
                    "provider_status": "success", "reference": "SIM-0000",
                    "amount_minor": 1000, "currency": "XOF", "failure_reason": ""}


class Floor:
    def __init__(self, keys: dict[str, str]) -> None:
        self._tenants = {hashlib.sha256(k.encode()).hexdigest(): t for t, k in keys.items()}
        self.streams: dict[str, set[asyncio.Queue[pb.WatchStatusResponse]]] = {}
        self.sent: list[tuple[float, str, str]] = []  # occurred_at, tenant, payment

    async def watch(self, request: pb.WatchStatusRequest,
                    context: grpc.aio.ServicerContext[Any, Any]
                    ) -> AsyncIterator[pb.WatchStatusResponse]:
        tenant = ""
        for name, value in context.invocation_metadata() or ():
            if name == "authorization":
                tenant = self._tenants.get(hashlib.sha256(
                    str(value).removeprefix("Bearer ").encode()).hexdigest(), "")
        if not tenant:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad key")
        del request
        queue: asyncio.Queue[pb.WatchStatusResponse] = asyncio.Queue()
        self.streams.setdefault(tenant, set()).add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self.streams[tenant].discard(queue)

    def live(self) -> int:
        return sum(len(s) for s in self.streams.values())

    async def produce(self, start_at: float, seconds: float, rate: int, tenants: int,
                      payments: int) -> None:
        """`rate` events a second for `seconds`, each built once and queued to its tenant's
        streams, in ticks of 10 ms as the benchmark's writer commits them."""
        payload = Struct()
        payload.update(PROVIDER_PAYLOAD)
        await asyncio.sleep(max(0.0, start_at - time.time()))
        tick, n, sequence = 0.01, 0, 0
        per_tick = max(1, round(rate * tick))
        began = time.monotonic()
        while (elapsed := time.monotonic() - began) < seconds:
            for _ in range(per_tick):
                payment = n % payments
                tenant, payment_id = f"t{payment % tenants}", f"p{payment}"
                now = time.time()
                sequence += 1
                at = Timestamp()
                at.FromNanoseconds(int(now * 1e9))
                message = pb.WatchStatusResponse(event=events_pb2.StatusEvent(
                    sequence=sequence, event_id=str(uuid.uuid4()), payment_id=payment_id,
                    direction=payment_pb2.DIRECTION_COLLECTION, provider="simulator",
                    account="default", old_status=payment_pb2.STATUS_PROCESSING,
                    new_status=payment_pb2.STATUS_SUCCEEDED, provider_status="success",
                    amount=money_pb2.Money(amount_minor=1000, currency="XOF"),
                    occurred_at=at, provider_reference=f"SIM-{payment}",
                    provider_payload=payload))
                for queue in self.streams.get(tenant, ()):
                    queue.put_nowait(message)
                self.sent.append((now, tenant, payment_id))
                n += 1
            await asyncio.sleep(max(0.0, (n / per_tick) * tick - elapsed))

    def logged(self, since: float, until: float) -> dict[str, Any]:
        per_key = Counter((t, p) for at, t, p in self.sent if since <= at < until)
        return {"events": sum(per_key.values()), "p50": 0.0, "p99": 0.0,
                "per_key": [[t, p, n] for (t, p), n in per_key.items()]}


async def serve(grpc_listen: str, http_listen: str, keys: dict[str, str]) -> None:
    floor = Floor(keys)
    server = grpc.aio.server(options=[("grpc.server.max_pending_requests_hard_limit", 50_000)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {
        "WatchStatus": grpc.unary_stream_rpc_method_handler(
            floor.watch, request_deserializer=pb.WatchStatusRequest.FromString,
            response_serializer=pb.WatchStatusResponse.SerializeToString),
    }),))
    server.add_insecure_port(grpc_listen)
    await server.start()
    tasks: set[asyncio.Task[None]] = set()

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(text=f'malipo_stream_subscribers{{mode="live"}} {floor.live()}\n')

    async def start(request: web.Request) -> web.Response:
        o = await request.json()
        task = asyncio.create_task(floor.produce(o["start_at"], o["seconds"], o["rate"],
                                                 o["tenants"], o["payments"]))
        tasks.add(task)
        return web.json_response({"started": True})

    async def logged(request: web.Request) -> web.Response:
        return web.json_response(floor.logged(float(request.query["since"]),
                                              float(request.query["until"])))

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/start", start)
    app.router.add_get("/logged", logged)
    await start_http(app, http_listen)
    print("ready", flush=True)
    await server.wait_for_termination()


def main() -> None:
    keys = dict(p.split("=", 1) for p in os.environ["FLOOR_KEYS"].split(",") if p)
    import uvloop

    uvloop.run(serve(sys.argv[1], sys.argv[2], keys))


if __name__ == "__main__":
    main()
