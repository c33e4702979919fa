"""The connector port: the same verbs for every provider (ActiveMerchant's lesson).

A connector speaks one provider's HTTP API for one configured account. It never touches the
database: it receives the domain Payment and answers with a neutral ProviderUpdate, or raises
one of the phase errors of malipo.domain.errors (ProviderRejectedRequest, ProviderUnavailable,
ProviderOutcomeUnknown, ProviderNotFound, CallbackRejected).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from malipo.app.catalogue import ProviderCatalogue
from malipo.domain.payments import Payment, ProviderUpdate
from malipo.domain.refunds import Refund


@dataclass(frozen=True, slots=True)
class ProviderAccount:
    """One account at a provider, from configuration. `settings` holds base URLs and
    credentials; it is never logged. `callback_url` is where this account's provider must
    send callbacks: {public callback base}/callbacks/{provider}/{name}."""

    provider: str
    name: str
    settings: Mapping[str, str] = field(default_factory=dict)
    tenants: frozenset[str] = frozenset()  # empty: every tenant may use it
    callback_url: str = ""

    def allows(self, tenant: str) -> bool:
        return not self.tenants or tenant in self.tenants

    def setting(self, key: str, default: str | None = None) -> str:
        value = self.settings.get(key, default)
        if value is None:
            raise KeyError(f"provider account {self.provider}/{self.name} needs setting {key!r}")
        return value


@dataclass(frozen=True, slots=True)
class Capabilities:
    collections: bool = True
    payouts: bool = False
    refunds: bool = False
    # Refunds of less than the whole amount, several per payment (PartialRefunds below).
    partial_refunds: bool = False
    cancellations: bool = False
    status_polling: bool = True
    callbacks: bool = False
    # The provider can find a transaction by OUR id, so a crash-resume can ask before resending.
    status_by_our_reference: bool = False
    # Re-sending a create with the same id is harmless (the provider dedupes on our id).
    idempotent_submit: bool = False
    # Re-sending a refund is harmless: the provider dedupes on our refund id (or, for a whole
    # refund, on the payment), so a refund left PENDING by a crash may be sent again.
    idempotent_refunds: bool = False
    # Callbacks are unauthenticated triggers: confirm each one with fetch_status first.
    callbacks_need_confirmation: bool = False


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request to a provider and its answer, already masked (redaction.py)."""

    operation: str
    method: str
    path: str
    request_body: str
    status: int  # 0 when no HTTP answer came
    response_body: str
    latency_ms: float
    at: datetime
    error: str = ""


@dataclass(frozen=True, slots=True)
class CallContext:
    """Per-call facts a connector must honour: the caller's deadline (monotonic seconds).
    Every provider exchange is appended to `exchanges`; the use case stores them with the
    state change they caused."""

    deadline: float | None = None
    exchanges: list[Exchange] = field(default_factory=list)

    def timeout(self, default: float) -> float:
        if self.deadline is None:
            return default
        return max(0.0, min(default, self.deadline - time.monotonic()))


@dataclass(frozen=True, slots=True)
class Confirmation:
    otp: str = ""
    provider_transaction_id: str = ""


@dataclass(frozen=True, slots=True)
class InboundCallback:
    provider: str
    account: str
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    query: Mapping[str, str]
    remote: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class CallbackEvent:
    """One thing a callback says about one payment. Kwik batches many per delivery.

    `payment_id` is our id when the provider echoes it; otherwise `update.provider_reference`
    finds the payment. `event_key` identifies the event for de-duplication (empty: the
    journal uses a hash of the raw body). `direction` is checked against the payment when
    the provider says it (the gateway's operation types 16/17)."""

    update: ProviderUpdate
    payment_id: str = ""
    event_key: str = ""
    direction: str = ""
    raw: Mapping[str, object] = field(default_factory=dict)


class CallbackOutcome(StrEnum):
    APPLIED = "APPLIED"
    DUPLICATE = "DUPLICATE"
    REJECTED = "REJECTED"          # failed verification: 401
    INVALID = "INVALID"            # unparseable: 400
    UNKNOWN_PAYMENT = "UNKNOWN_PAYMENT"
    MISMATCH = "MISMATCH"
    DEFERRED = "DEFERRED"          # kept in the journal until the reference is known
    IGNORED = "IGNORED"            # stale or no change


@dataclass(frozen=True, slots=True)
class CallbackAnswer:
    status: int
    body: bytes = b""
    content_type: str = "text/plain"


@runtime_checkable
class Connector(Protocol):
    """The verbs every provider offers. Unsupported verbs raise domain Unsupported."""

    provider: str
    account: ProviderAccount
    capabilities: Capabilities

    def catalogue(self) -> ProviderCatalogue: ...

    def validate(self, payment: Payment) -> None:
        """Provider rules beyond the catalogue's; raise InvalidRequest before any call."""
        ...

    async def create_payment(self, payment: Payment, ctx: CallContext) -> ProviderUpdate: ...

    async def create_payout(self, payment: Payment, ctx: CallContext) -> ProviderUpdate: ...

    async def confirm(self, payment: Payment, confirmation: Confirmation,
                      ctx: CallContext) -> ProviderUpdate: ...

    async def fetch_status(self, payment: Payment, ctx: CallContext) -> ProviderUpdate: ...

    async def refund(self, payment: Payment, ctx: CallContext) -> ProviderUpdate: ...

    async def cancel(self, payment: Payment, ctx: CallContext) -> ProviderUpdate: ...

    def verify_callback(self, callback: InboundCallback) -> None:
        """Raise CallbackRejected unless the callback is authentic (raw bytes, constant time)."""
        ...

    def parse_callback(self, callback: InboundCallback) -> list[CallbackEvent]:
        """Raise CallbackRejected on a body that is not this provider's callback."""
        ...

    def callback_answer(self, outcome: CallbackOutcome) -> CallbackAnswer:
        """Exactly what the provider expects back for this outcome."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class SettlesNotBefore(Protocol):
    """Optional for a connector: a payment that cannot settle before a date it names (a
    debit order's action date). The expiry rule starts counting only then."""

    def settles_not_before(self, payment: Payment) -> datetime | None: ...


@runtime_checkable
class PartialRefunds(Protocol):
    """The verb of a connector whose capabilities say partial_refunds. Connectors without it
    keep Connector.refund, which returns the whole amount."""

    async def refund_part(self, payment: Payment, refund: Refund,
                          ctx: CallContext) -> ProviderUpdate:
        """Refund `refund.amount` of `payment`; `refund.id` is our reference for it. The
        update speaks of the refund: SUCCEEDED, FAILED, PROCESSING or None (accepted), with
        the provider's reference for the refund."""
        ...


@runtime_checkable
class RefundStatus(Protocol):
    """Optional for a connector: the provider can say where one refund stands. Without it a
    refund left unsettled is never guessed FAILED (that would free its amount for a second
    refund): it waits for other news and is flagged for review under the expiry rule."""

    async def fetch_refund_status(self, payment: Payment, refund: Refund,
                                  ctx: CallContext) -> ProviderUpdate:
        """Where `refund` of `payment` stands, speaking of the refund (SUCCEEDED, FAILED,
        PROCESSING or None: no opinion yet). ProviderNotFound: the provider never got it."""
        ...


def ok_answer() -> CallbackAnswer:
    return CallbackAnswer(200, b"OK")


def default_callback_answer(outcome: CallbackOutcome) -> CallbackAnswer:
    """Most providers want a 2xx for anything we journaled, 401 for forgeries."""
    if outcome is CallbackOutcome.REJECTED:
        return CallbackAnswer(401, b"unauthorized")
    if outcome is CallbackOutcome.INVALID:
        return CallbackAnswer(400, b"bad request")
    return ok_answer()
