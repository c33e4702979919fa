"""The one table from domain errors to gRPC status codes with google.rpc details."""

from __future__ import annotations

import logging
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from malipo.domain.errors import (
    FailedPrecondition,
    IdempotencyKeyReused,
    InvalidRequest,
    MalipoError,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ProviderError,
    RateLimited,
    Unauthenticated,
    Unavailable,
    Unsupported,
)
from malipo.redaction import mask_text

DOMAIN = "malipo.dev"
log = logging.getLogger("malipo.api")

_CODES: list[tuple[type[MalipoError], int]] = [
    (InvalidRequest, code_pb2.INVALID_ARGUMENT),
    (IdempotencyKeyReused, code_pb2.ALREADY_EXISTS),
    (NotFound, code_pb2.NOT_FOUND),
    (FailedPrecondition, code_pb2.FAILED_PRECONDITION),
    (Unsupported, code_pb2.FAILED_PRECONDITION),
    (Unauthenticated, code_pb2.UNAUTHENTICATED),
    (PermissionDenied, code_pb2.PERMISSION_DENIED),
    (RateLimited, code_pb2.RESOURCE_EXHAUSTED),
    (OutOfRange, code_pb2.OUT_OF_RANGE),
    (Unavailable, code_pb2.UNAVAILABLE),
    (ProviderError, code_pb2.UNAVAILABLE),
]


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_status(exc: MalipoError) -> grpc.Status:
    code = next((c for kind, c in _CODES if isinstance(exc, kind)), code_pb2.INTERNAL)
    metadata: dict[str, str] = {}
    details = []
    if isinstance(exc, InvalidRequest):
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field,
                                                        description=mask_text(v.description))
            for v in exc.violations
        ])))
    if isinstance(exc, OutOfRange):
        metadata["oldest_sequence"] = str(exc.oldest_sequence)
    if isinstance(exc, FailedPrecondition):
        metadata.update(exc.metadata)
    details.insert(0, _pack(error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN,
                                                        metadata=metadata)))
    retry_after = getattr(exc, "retry_after_s", None)
    if retry_after is not None or code == code_pb2.UNAVAILABLE:
        seconds = float(retry_after or 1.0)
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(
            seconds=int(seconds), nanos=int((seconds % 1) * 1e9)))))
    return rpc_status.to_status(status_pb2.Status(code=code, message=mask_text(exc.message),
                                                  details=details))


Context = grpc.aio.ServicerContext[Any, Any]

async def abort(context: Context, exc: MalipoError) -> None:
    status = to_status(exc)
    await context.abort(status.code, status.details, status.trailing_metadata)


def domain_error(method: str, exc: Exception,
                 connection_lost: tuple[type[BaseException], ...]) -> MalipoError:
    """What the caller is told about an exception leaving `method`: domain errors as they
    are, a lost database connection (`connection_lost`: the store's own exceptions for it)
    as retryable, anything else as an internal error (its details go to the log only)."""
    if isinstance(exc, MalipoError):
        return exc
    if isinstance(exc, connection_lost):
        log.warning("%s: database connection lost: %s", method, type(exc).__name__)
        return Unavailable("database unavailable, retry with the same key",
                           reason="DATABASE_UNAVAILABLE")
    log.exception("unhandled error in %s", method, exc_info=exc)
    return MalipoError("internal error")
