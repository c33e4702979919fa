"""Port to the callback journal: raw deliveries kept before anything else, then their events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from malipo.domain.payments import Payment


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST as it arrived (headers already masked)."""

    provider: str
    account: str
    received_at: datetime
    remote: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class EventClaim:
    """A provider event's de-duplication identity and what the journal keeps of it."""

    key: str
    payment_id: str
    reference: str
    event: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class JournaledDelivery:
    """A delivery to journal, with its one event's claim, in the commit that writes what it
    brought; `outcome` is the delivery's and the event's, as that write decided it."""

    delivery: Delivery
    claim: EventClaim
    outcome: str


@dataclass(frozen=True, slots=True)
class Claimed:
    journal_id: int
    fresh: bool  # False: this provider event was seen before (a duplicate delivery)
    payment: Payment | None  # the payment the event names, as read in the same statement


@dataclass(frozen=True, slots=True)
class Deferred:
    """A callback event that named a provider reference before any payment held it."""

    key: str
    journal_id: int
    body: bytes


class CallbackJournal(Protocol):
    async def record(self, delivery: Delivery, *, outcome: str = "RECEIVED",
                     detail: str = "") -> int:
        """Journal a delivery; its id."""
        ...

    async def record_claiming(self, delivery: Delivery, claim: EventClaim) -> Claimed:
        """Journal the delivery, claim its one event and read the payment it names."""
        ...

    async def mark_delivery(self, journal_id: int, outcome: str, detail: str = "", *,
                            event: tuple[str, str, str] = ("", "", ""),
                            event_outcome: str = "") -> None:
        """Set the delivery's outcome; with `event` = (provider, account, key), that event's
        outcome too (`event_outcome`, default the same)."""
        ...

    async def claim_event(self, provider: str, account: str, event_key: str, journal_id: int,
                          payment_id: str, reference: str, event: Mapping[str, Any]) -> bool:
        """False when this provider event was seen before (a duplicate delivery)."""
        ...

    async def mark_event(self, provider: str, account: str, event_key: str,
                         outcome: str) -> None: ...

    async def deferred_for(self, provider: str, account: str,
                           reference: str) -> list[Deferred]:
        """Events waiting for `reference`, in the order they arrived."""
        ...
