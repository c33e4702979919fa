"""Committed status events as subscribers receive them, and the filter they choose."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from malipo.domain.money import Money
from malipo.domain.status import Direction, Status


@dataclass(frozen=True, slots=True)
class StatusEvent:
    sequence: int
    event_id: str
    tenant: str
    payment_id: str
    direction: Direction
    provider: str
    account: str
    old_status: Status | None  # None for the creation event
    new_status: Status
    provider_status: str
    provider_reference: str
    amount: Money
    reason: str
    message: str
    fulfilment: Mapping[str, str]
    needs_review: bool
    occurred_at: datetime
    # The provider's own words that caused the change (masked, size-capped); empty when
    # Malipo caused it.
    provider_payload: Mapping[str, object] = field(default_factory=dict)
    # Set when the event is a change of this refund of the payment (statuses and amount are
    # the refund's).
    refund_id: str = ""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Sent on idle streams; `sequence` is the highest sequence examined for the stream."""

    sequence: int
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class EventFilter:
    tenant: str
    payment_id: str = ""
    provider: str = ""
    direction: Direction | None = None
    statuses: frozenset[Status] = field(default_factory=frozenset)

    def matches(self, event: StatusEvent) -> bool:
        return (
            event.tenant == self.tenant
            and (not self.payment_id or event.payment_id == self.payment_id)
            and (not self.provider or event.provider == self.provider)
            and (self.direction is None or event.direction is self.direction)
            and (not self.statuses or event.new_status in self.statuses)
        )
