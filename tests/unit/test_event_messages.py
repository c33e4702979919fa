"""WatchStatus builds and serialises each event's message once for all the streams that send
it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from malipo.api.convert import event_to_proto
from malipo.api.servicer import _EventMessages
from malipo.domain.events import StatusEvent
from malipo.domain.money import Money
from malipo.domain.status import Direction, Status
from malipo.payments.v1.payment_service_pb2 import WatchStatusResponse

EVENT = StatusEvent(
    sequence=1, event_id="e1", tenant="t", payment_id="pay_1", direction=Direction.COLLECTION,
    provider="simulator", account="default", old_status=Status.PROCESSING,
    new_status=Status.SUCCEEDED, provider_status="success", provider_reference="SIM-1",
    amount=Money.of(1000, "KES"), reason="", message="", fulfilment={}, needs_review=False,
    occurred_at=datetime(2026, 1, 1, tzinfo=UTC), provider_payload={"status": "SUCCEEDED"})


def test_one_message_per_event_for_every_stream() -> None:
    messages = _EventMessages()
    first = messages.get(EVENT)
    # Another stream gets the same event from a catch-up read: a distinct, equal object.
    assert messages.get(replace(EVENT)) is first
    assert WatchStatusResponse.FromString(first) == event_to_proto(EVENT)
    later = messages.get(replace(EVENT, sequence=2, new_status=Status.FAILED))
    assert later is not first
    assert WatchStatusResponse.FromString(later).event.sequence == 2


def test_bounded_oldest_first() -> None:
    messages = _EventMessages(size=3)
    built = [messages.get(replace(EVENT, sequence=s)) for s in range(1, 6)]
    assert sorted(messages._by_sequence) == [3, 4, 5]
    assert messages.get(replace(EVENT, sequence=5)) is built[4]
    rebuilt = messages.get(replace(EVENT, sequence=1))
    assert rebuilt is not built[0] and rebuilt == built[0]
    assert len(messages._by_sequence) == 3
