"""One root exception; the gRPC edge maps each kind to one status code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


class MalipoError(Exception):
    """Root of every error this service raises on purpose."""

    reason: str = "INTERNAL"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


@dataclass(frozen=True, slots=True)
class FieldViolation:
    field: str
    description: str


class InvalidRequest(MalipoError):
    """Input breaks a rule; nothing was changed."""

    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation] | FieldViolation,
                 *, reason: str | None = None) -> None:
        self.violations = violations if isinstance(violations, list) else [violations]
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in self.violations),
                         reason=reason)


class IdempotencyKeyReused(MalipoError):
    reason = "IDEMPOTENCY_KEY_REUSED"


class NotFound(MalipoError):
    """Also raised for another tenant's resource, so existence never leaks."""

    reason = "NOT_FOUND"


class FailedPrecondition(MalipoError):
    """The request is valid but the resource's state does not allow it. `metadata` goes to
    the ErrorInfo, for what a caller needs to act on (the remaining refundable amount)."""

    reason = "FAILED_PRECONDITION"

    def __init__(self, message: str, *, reason: str | None = None,
                 metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message, reason=reason)
        self.metadata: Mapping[str, str] = dict(metadata or {})


class Unsupported(MalipoError):
    """The provider cannot do this (see its capabilities)."""

    reason = "NOT_SUPPORTED_BY_PROVIDER"


class Unauthenticated(MalipoError):
    reason = "UNAUTHENTICATED"


class PermissionDenied(MalipoError):
    """The caller is known but its key may not do this (a tenant key resolving payments)."""

    reason = "PERMISSION_DENIED"


@dataclass
class RateLimited(MalipoError):
    message: str
    retry_after_s: float = 1.0
    reason: str = field(default="RATE_LIMITED")

    def __post_init__(self) -> None:
        super().__init__(self.message, reason=self.reason)


class OutOfRange(MalipoError):
    reason = "CURSOR_EXPIRED"

    def __init__(self, message: str, *, oldest_sequence: int) -> None:
        super().__init__(message)
        self.oldest_sequence = oldest_sequence


class Unavailable(MalipoError):
    """A dependency is down; the same request may succeed later (retry with the same key)."""

    reason = "UNAVAILABLE"

    def __init__(self, message: str, *, retry_after_s: float = 1.0,
                 reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.retry_after_s = retry_after_s


class ProviderError(MalipoError):
    """Raised by connectors, split by the phase in which the call went wrong."""

    reason = "PROVIDER_ERROR"


class ProviderRejectedRequest(ProviderError):
    """The provider refused the request before doing anything (bad field, bad credentials)."""

    reason = "PROVIDER_REJECTED"


class ProviderUnavailable(ProviderError):
    """Nothing was sent, or the provider surely did not act on it: safe to try again."""

    reason = "PROVIDER_UNAVAILABLE"


class ProviderOutcomeUnknown(ProviderError):
    """Sent, and the answer was lost: the payment becomes UNKNOWN until a poll resolves it."""

    reason = "PROVIDER_OUTCOME_UNKNOWN"


class ProviderNotFound(ProviderError):
    """A status lookup found no such transaction at the provider."""

    reason = "PROVIDER_NOT_FOUND"


class CallbackRejected(MalipoError):
    """A callback failed verification (signature, secret, shape); it is never applied."""

    reason = "CALLBACK_REJECTED"
