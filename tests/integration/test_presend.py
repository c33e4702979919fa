"""api/presend.py on a real grpc.aio server over a socket: a server-streaming method may yield
bytes serialised already and messages alike, whichever way grpc finds its handler."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from malipo.api.convert import heartbeat_to_proto
from malipo.api.presend import SendingBytes
from malipo.api.servicer import SERVICE_NAME as SERVICE
from malipo.domain.events import Heartbeat
from malipo.payments.v1 import events_pb2
from malipo.payments.v1 import payment_service_pb2 as pb

EVENT = pb.WatchStatusResponse(event=events_pb2.StatusEvent(sequence=7, payment_id="pay_1"))


async def _watch(_request: pb.WatchStatusRequest,
                 _context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
    yield EVENT.SerializeToString()
    yield heartbeat_to_proto(Heartbeat(sequence=7, sent_at=datetime(2026, 1, 1, tzinfo=UTC)))


def _handlers() -> dict[str, Any]:
    return {"WatchStatus": grpc.unary_stream_rpc_method_handler(
        _watch, request_deserializer=pb.WatchStatusRequest.FromString,
        response_serializer=pb.WatchStatusResponse.SerializeToString)}


def _generic(server: SendingBytes) -> None:
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE,
                                                                          _handlers()),))


def _registered(server: SendingBytes) -> None:
    server.add_registered_method_handlers(SERVICE, _handlers())


@pytest.mark.parametrize("register", [_generic, _registered])
async def test_bytes_and_messages_reach_the_client(
        register: Callable[[SendingBytes], None]) -> None:
    server = grpc.aio.server()
    register(SendingBytes(server, SERVICE, methods=("WatchStatus",)))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            watch = channel.unary_stream(f"/{SERVICE}/WatchStatus",
                                         request_serializer=pb.WatchStatusRequest.SerializeToString,
                                         response_deserializer=pb.WatchStatusResponse.FromString)
            got = [m async for m in watch(pb.WatchStatusRequest(), timeout=10)]
    finally:
        await server.stop(None)
    assert got[0] == EVENT
    assert got[1].heartbeat.sequence == 7 and got[1].heartbeat.sent_at.seconds > 0


def test_a_method_the_service_lacks_is_refused() -> None:
    sending = SendingBytes(grpc.aio.server(), SERVICE, methods=("WatchStatuses",))
    with pytest.raises(ValueError, match="WatchStatuses"):
        sending.add_registered_method_handlers(SERVICE, _handlers())
