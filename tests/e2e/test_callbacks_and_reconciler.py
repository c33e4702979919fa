# pyright: basic
"""Callbacks through the real listener and the reconciler, with the simulator provider."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aiohttp
import asyncpg

from malipo.connectors.simulator.signing import SIGNATURE_HEADER, sign
from malipo.payments.v1 import payment_pb2, payment_service_pb2
from tests.e2e.test_payments_api import wait_status
from tests.harness import Running, auth, create_request

pb = payment_service_pb2


def key() -> str:
    return f"cb-{uuid.uuid4()}"


def body(payment_id: str, status: str, *, amount: int = 1000, event: str = "",
         reference: str = "") -> bytes:
    return json.dumps({
        "event_id": event or f"{payment_id}:{status}", "payment_id": payment_id,
        "reference": reference, "status": status, "provider_status": status.lower(),
        "amount_minor": amount, "currency": "KES",
    }).encode()


async def post(service: Running, raw: bytes, *, secret: str = "simulator-secret",
               signature: str | None = None) -> tuple[int, str]:
    header = signature if signature is not None else sign(secret, raw, int(time.time()))
    async with aiohttp.ClientSession() as session, session.post(
        f"{service.callback_base}/callbacks/simulator/default", data=raw,
        headers={SIGNATURE_HEADER: header, "Content-Type": "application/json"},
    ) as resp:
        return resp.status, await resp.text()


async def stuck_payment(service: Running) -> payment_pb2.Payment:
    """A payment that stays PROCESSING at the provider and gets no callback of its own."""
    return (await service.stub.CreatePayment(create_request(key(), phone="+254712345605"),
                                             metadata=auth())).payment


async def events_of(pool: asyncpg.Pool, payment_id: str) -> list[tuple[str, str]]:
    rows = await pool.fetch("SELECT old_status, new_status FROM (SELECT payload->>'old_status' "
                            "AS old_status, payload->>'new_status' AS new_status, id FROM outbox "
                            "WHERE payload->>'payment_id' = $1 UNION ALL SELECT old_status, "
                            "new_status, sequence FROM events WHERE payment_id = $1) e "
                            "ORDER BY 1, 2", payment_id)
    return [(r["old_status"], r["new_status"]) for r in rows]


async def test_signed_callback_applies_once_and_duplicate_changes_nothing(
        malipo: Running) -> None:
    p = await stuck_payment(malipo)
    raw = body(p.id, "SUCCEEDED")
    assert (await post(malipo, raw))[0] == 200
    assert (await post(malipo, raw))[0] == 200
    got = await wait_status(malipo, p.id, payment_pb2.STATUS_SUCCEEDED)
    assert got.status == payment_pb2.STATUS_SUCCEEDED
    assert malipo.app.pool is not None
    moves = await events_of(malipo.app.pool, p.id)
    assert moves.count(("PROCESSING", "SUCCEEDED")) == 1
    outcomes = await malipo.app.pool.fetch(
        "SELECT outcome FROM callback_journal WHERE body = $1 ORDER BY id", raw)
    assert [r["outcome"] for r in outcomes] == ["APPLIED", "DUPLICATE"]


async def test_forged_callback_is_401_journaled_and_never_applied(malipo: Running) -> None:
    p = await stuck_payment(malipo)
    raw = body(p.id, "SUCCEEDED")
    status, _ = await post(malipo, raw, secret="not-the-secret")
    assert status == 401
    status, _ = await post(malipo, raw, signature="t=1,v1=00")
    assert status == 401
    got = (await malipo.stub.GetPayment(pb.GetPaymentRequest(payment_id=p.id),
                                        metadata=auth())).payment
    assert got.status == payment_pb2.STATUS_PROCESSING
    assert malipo.app.pool is not None
    rejected = await malipo.app.pool.fetchval(
        "SELECT count(*) FROM callback_journal WHERE body = $1 AND outcome = 'REJECTED'", raw)
    assert rejected == 2


async def test_replayed_old_signature_is_rejected(malipo: Running) -> None:
    p = await stuck_payment(malipo)
    raw = body(p.id, "FAILED")
    old = sign("simulator-secret", raw, int(time.time()) - 3600)
    assert (await post(malipo, raw, signature=old))[0] == 401


async def test_oversized_body_is_413(malipo: Running) -> None:
    raw = b'{"pad":"' + b"x" * (300 * 1024) + b'"}'
    assert (await post(malipo, raw))[0] == 413


async def test_amount_mismatch_is_flagged_not_applied(malipo: Running) -> None:
    p = await stuck_payment(malipo)
    status, _ = await post(malipo, body(p.id, "SUCCEEDED", amount=999))
    assert status == 200
    got = (await malipo.stub.GetPayment(pb.GetPaymentRequest(payment_id=p.id),
                                        metadata=auth())).payment
    assert got.status == payment_pb2.STATUS_PROCESSING
    assert got.needs_review
    assert got.review_reason.startswith("AMOUNT_MISMATCH")


async def test_out_of_order_callbacks_end_in_the_right_state(malipo: Running) -> None:
    p = await stuck_payment(malipo)
    assert (await post(malipo, body(p.id, "SUCCEEDED")))[0] == 200
    assert (await post(malipo, body(p.id, "PROCESSING", event="late")))[0] == 200
    got = await wait_status(malipo, p.id, payment_pb2.STATUS_SUCCEEDED)
    assert got.status == payment_pb2.STATUS_SUCCEEDED


async def test_early_callback_waits_for_the_reference(malipo: Running) -> None:
    p = await stuck_payment(malipo)
    early_ref = "EARLY-" + p.id
    raw = json.dumps({"event_id": "early-1", "payment_id": "", "reference": early_ref,
                      "status": "SUCCEEDED", "amount_minor": 1000, "currency": "KES"}).encode()
    assert (await post(malipo, raw))[0] == 200
    assert malipo.app.pool is not None
    outcome = await malipo.app.pool.fetchval(
        "SELECT outcome FROM callback_events WHERE event_key = 'early-1'")
    assert outcome == "DEFERRED"
    # The provider's reference becomes known (here through a refresh answer).
    from malipo.app.provider_events import record_update
    from malipo.domain.payments import ProviderUpdate

    assert malipo.app.services is not None
    await malipo.app.pool.execute("UPDATE payments SET provider_reference = '' WHERE id = $1",
                                  p.id)
    await record_update(malipo.app.services, p.id, ProviderUpdate(
        None, provider_reference=early_ref), actor="test")
    got = await wait_status(malipo, p.id, payment_pb2.STATUS_SUCCEEDED)
    assert got.status == payment_pb2.STATUS_SUCCEEDED


async def test_lost_callback_is_resolved_by_the_reconciler(malipo: Running) -> None:
    p = (await malipo.stub.CreatePayment(create_request(key(), phone="+254712345607"),
                                         metadata=auth())).payment
    assert p.status == payment_pb2.STATUS_PROCESSING
    got = await wait_status(malipo, p.id, payment_pb2.STATUS_SUCCEEDED)
    assert got.status == payment_pb2.STATUS_SUCCEEDED


async def test_unavailable_provider_keeps_it_pending_and_retries(malipo: Running) -> None:
    p = (await malipo.stub.CreatePayment(create_request(key(), phone="+254712345608"),
                                         metadata=auth())).payment
    assert p.status == payment_pb2.STATUS_PENDING
    await asyncio.sleep(0.6)
    assert malipo.app.pool is not None
    exchanges = await malipo.app.pool.fetchval(
        "SELECT next_poll_at IS NOT NULL FROM payments WHERE id = $1", p.id)
    assert exchanges is True
