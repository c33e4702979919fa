"""Streamed responses serialised once, before grpc sees them.

WatchStatus sends each event to every stream that wants it. Kept as a message for the
streams to share, an event costs ~3.3 KB of upb arena for as long as it is kept (4,096
kept: ~13 MB, the largest part of the server's growth under a steady event flow); kept as
its wire bytes, ~0.35 KB. grpc sends bytes unchanged when a method's response serializer
lets them through, so the generated registration is given a server on which the named
streaming methods' serializers do that (and still serialise every message yielded)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeAlias

import grpc
from google.protobuf.message import Message

Serializer = Callable[[Any], bytes]


def passing_bytes(serialize: Serializer) -> Serializer:
    """`serialize`, except that bytes (a message serialised already) go out as they are."""

    def serialize_unless_bytes(response: Message | bytes) -> bytes:
        return response if isinstance(response, bytes) else serialize(response)

    return serialize_unless_bytes


Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"  # generic in the stubs only


def _rewritten(handler: Handler) -> Handler:
    behaviour, serialize = handler.unary_stream, handler.response_serializer
    if behaviour is None or serialize is None:
        raise ValueError("only a server-streaming method can send serialised bytes")
    return grpc.unary_stream_rpc_method_handler(
        behaviour, request_deserializer=handler.request_deserializer,
        response_serializer=passing_bytes(serialize))


class _Rewriting(grpc.GenericRpcHandler):
    def __init__(self, inner: grpc.GenericRpcHandler, methods: Collection[str]) -> None:
        self._inner = inner
        self._methods = methods  # fully qualified: /package.Service/Method

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        handler = self._inner.service(handler_call_details)
        if handler is None or handler_call_details.method not in self._methods:
            return handler
        return _rewritten(handler)


class SendingBytes:
    """The server as a generated `add_*Servicer_to_server` sees it: `methods` of `service`
    (server-streaming) may yield bytes. The generated code registers each method twice, as
    a generic handler and as a registered one (grpc's faster lookup); both are rewritten."""

    def __init__(self, server: grpc.aio.Server, service: str, methods: Collection[str]) -> None:
        self._server = server
        self._service = service
        self._methods = frozenset(methods)

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        qualified = {f"/{self._service}/{m}" for m in self._methods}
        self._server.add_generic_rpc_handlers(tuple(_Rewriting(h, qualified) for h in handlers))

    def add_registered_method_handlers(self, service: str,
                                       handlers: Mapping[str, Handler]) -> None:
        if service == self._service:
            if missing := self._methods - handlers.keys():
                raise ValueError(f"{service} has no method {', '.join(sorted(missing))}")
            handlers = {name: _rewritten(h) if name in self._methods else h
                        for name, h in handlers.items()}
        # grpc.aio.Server has it since grpc 1.63; typeshed's stubs do not say so yet.
        self._server.add_registered_method_handlers(  # pyright: ignore[reportAttributeAccessIssue]
            service, dict(handlers))
