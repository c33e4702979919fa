"""The google.rpc details Malipo attaches to its errors, decoded from a failed call.

The server sends a google.rpc.Status in the `grpc-status-details-bin` trailer (see
service/malipo/api/errors.py): ErrorInfo with the reason on every error, BadRequest with
the fields at fault on INVALID_ARGUMENT, RetryInfo on UNAVAILABLE and RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import grpc
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

DETAILS_KEY = "grpc-status-details-bin"
M = TypeVar("M", bound=Message)


@dataclass(frozen=True, slots=True)
class ErrorDetails:
    """What the server said beyond the code and message; None where it sent nothing."""

    error_info: error_details_pb2.ErrorInfo | None = None
    bad_request: error_details_pb2.BadRequest | None = None
    retry_info: error_details_pb2.RetryInfo | None = None

    @property
    def reason(self) -> str:
        """ErrorInfo's machine-readable reason ("IDEMPOTENCY_KEY_REUSED", ...), or ""."""
        return self.error_info.reason if self.error_info is not None else ""

    @property
    def retry_delay_s(self) -> float | None:
        """The server's minimum wait before a retry, when it gave one."""
        if self.retry_info is None:
            return None
        delay = self.retry_info.retry_delay
        return delay.seconds + delay.nanos / 1e9


def error_details(exc: grpc.aio.AioRpcError) -> ErrorDetails:
    """The decoded details of `exc`; empty when the trailer is missing or unreadable (a
    connection that broke before any answer has none)."""
    raw = next((value for key, value in exc.trailing_metadata() or ()
                if key == DETAILS_KEY and isinstance(value, bytes)), None)
    if raw is None:
        return ErrorDetails()
    try:
        status = status_pb2.Status.FromString(raw)
    except DecodeError:
        return ErrorDetails()
    return ErrorDetails(_first(status, error_details_pb2.ErrorInfo),
                        _first(status, error_details_pb2.BadRequest),
                        _first(status, error_details_pb2.RetryInfo))


def _first(status: status_pb2.Status, kind: type[M]) -> M | None:
    for detail in status.details:
        if detail.TypeName() == kind.DESCRIPTOR.full_name:
            message = kind()
            detail.Unpack(message)
            return message
    return None
