# pyright: basic
"""WatchStatus over the real gRPC socket: replay, live, resume, tenant isolation."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from malipo.payments.v1 import events_pb2, payment_pb2, payment_service_pb2
from tests.harness import Running, auth, create_request

pb = payment_service_pb2
FINAL = {payment_pb2.STATUS_SUCCEEDED, payment_pb2.STATUS_FAILED}


async def collect(service: Running, tenant: str, *, after: int | None, payment_id: str = "",
                  until_final: bool = True, limit: int = 50,
                  timeout: float = 10.0) -> list[events_pb2.StatusEvent]:
    request = pb.WatchStatusRequest(filter={"payment_id": payment_id})
    if after is not None:
        request.after_sequence = after
    got = []
    call = service.stub.WatchStatus(request, metadata=auth(tenant), timeout=timeout)
    try:
        async for message in call:
            if message.HasField("event"):
                got.append(message.event)
                if (until_final and message.event.new_status in FINAL) or len(got) >= limit:
                    break
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
    finally:
        call.cancel()
    return got


async def test_watch_from_zero_sees_the_whole_life_of_a_payment(malipo: Running) -> None:
    p = (await malipo.stub.CreatePayment(create_request(f"w-{uuid.uuid4()}"),
                                         metadata=auth())).payment
    events = await collect(malipo, "acme", after=0, payment_id=p.id)
    moves = [(e.old_status, e.new_status) for e in events]
    assert moves == [
        (payment_pb2.STATUS_UNSPECIFIED, payment_pb2.STATUS_PENDING),
        (payment_pb2.STATUS_PENDING, payment_pb2.STATUS_PROCESSING),
        (payment_pb2.STATUS_PROCESSING, payment_pb2.STATUS_SUCCEEDED),
    ]
    sequences = [e.sequence for e in events]
    assert sequences == sorted(sequences)
    assert all(e.amount.amount_minor == 1000 for e in events)
    # Our own creation event carries nothing a provider said (tests/e2e/test_paykassma_flows
    # checks the events a provider's postback causes).
    assert not events[0].HasField("provider_payload")


async def test_live_then_resume_from_last_sequence_misses_nothing(malipo: Running) -> None:
    p = (await malipo.stub.CreatePayment(create_request(f"w-{uuid.uuid4()}"),
                                         metadata=auth())).payment
    first = await collect(malipo, "acme", after=0, payment_id=p.id, until_final=False, limit=1)
    rest = await collect(malipo, "acme", after=first[-1].sequence, payment_id=p.id)
    seen = [e.sequence for e in first + rest]
    assert len(seen) == len(set(seen)) == 3
    got = (await malipo.stub.GetPayment(pb.GetPaymentRequest(payment_id=p.id),
                                        metadata=auth())).payment
    assert got.last_event_sequence == seen[-1]


async def test_a_tenant_never_sees_another_tenants_events(malipo: Running) -> None:
    p = (await malipo.stub.CreatePayment(create_request(f"w-{uuid.uuid4()}"),
                                         metadata=auth())).payment
    await collect(malipo, "acme", after=0, payment_id=p.id)
    theirs = await collect(malipo, "globex", after=0, payment_id=p.id, timeout=1.0)
    assert theirs == []
    everything = await collect(malipo, "globex", after=0, until_final=False, timeout=1.0)
    assert p.id not in {e.payment_id for e in everything}


async def test_watch_needs_credentials(malipo: Running) -> None:
    call = malipo.stub.WatchStatus(pb.WatchStatusRequest(after_sequence=0), timeout=2)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in call:
            pass
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    await asyncio.sleep(0)


async def test_a_change_answer_carries_a_cursor_to_watch_from(malipo: Running) -> None:
    """CancelPayment (like Refund, Confirm, Refresh) answers with a last_event_sequence that
    misses nothing: watching from it yields the change it made, never an older one."""
    p = (await malipo.stub.CreatePayment(
        create_request(f"w-{uuid.uuid4()}", phone="+254712345605"),  # stays PROCESSING
        metadata=auth())).payment
    before = await collect(malipo, "acme", after=0, payment_id=p.id, until_final=False, limit=2)
    assert before[-1].new_status == payment_pb2.STATUS_PROCESSING
    cancelled = (await malipo.stub.CancelPayment(payment_service_pb2.CancelPaymentRequest(
        idempotency_key=f"c-{uuid.uuid4()}", payment_id=p.id, reason="test"),
        metadata=auth())).payment
    assert cancelled.status == payment_pb2.STATUS_CANCELLED
    assert cancelled.last_event_sequence >= before[-1].sequence
    after = await collect(malipo, "acme", after=cancelled.last_event_sequence,
                          payment_id=p.id)
    assert [e.new_status for e in after] == [payment_pb2.STATUS_CANCELLED]
