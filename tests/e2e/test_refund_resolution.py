# pyright: basic
"""Operators settling refunds no provider answer settled (ResolveRefund) end to end: the real
server over a socket, PostgreSQL, the simulator, and the reconciler's expiry rule flagging
the refunds first, as it does in production."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import grpc
import pytest
from google.protobuf import json_format

from malipo.config import PolicyConfig
from malipo.payments.v1 import events_pb2, payment_pb2, payment_service_pb2
from tests.e2e.test_partial_refunds import kes, refund, refunds_of
from tests.e2e.test_payments_api import details, wait_status
from tests.e2e.test_refund_reconciliation import eventually, pool, stuck_refund
from tests.e2e.test_review_and_resolution import OPERATOR, OPERATOR_KEY, OPERATOR_KEY_ID
from tests.harness import Running, auth, create_request, running, settings_for

pb = payment_service_pb2
# Payments settle by the simulator's own callback; the reconciler looks at a refund only
# when told to (a stuck refund is due at once), so an UNKNOWN one stays UNKNOWN meanwhile.
POLICY = PolicyConfig(start_after_s=60.0, interval_s=60.0, backoff=1.0, max_interval_s=60.0,
                      submit_grace_s=60.0, submit_give_up_s=120.0)
LONG_AGO = timedelta(days=2)  # past the default expiry rule (a day)


@pytest.fixture(scope="module")
async def malipo(database_url: str) -> AsyncIterator[Running]:
    settings = settings_for(database_url, policies={"simulator": POLICY},
                            operator_keys=f"ops={OPERATOR_KEY}")
    async with running(settings) as service:
        yield service


def key() -> str:
    return f"rr-{uuid.uuid4()}"


async def succeeded(service: Running, amount: int = 1000, **fields: str) -> payment_pb2.Payment:
    created = (await service.stub.CreatePayment(
        create_request(key(), amount=amount, provider_fields=fields), metadata=auth())).payment
    done = await wait_status(service, created.id, payment_pb2.STATUS_SUCCEEDED)
    assert done.status == payment_pb2.STATUS_SUCCEEDED
    return done


async def get(service: Running, payment_id: str) -> payment_pb2.Payment:
    return (await service.stub.GetPayment(pb.GetPaymentRequest(payment_id=payment_id),
                                          metadata=auth())).payment


async def flagged_refund(service: Running, payment_id: str, minor: int) -> payment_pb2.Refund:
    """A refund a crash left PENDING two days ago, the provider never told: the reconciler's
    first look finds it past the expiry rule and flags it and its payment (REFUND_UNSETTLED)."""
    stuck = await stuck_refund(service, payment_id, minor, age=LONG_AGO)

    async def flagged() -> bool:
        return bool(await pool(service).fetchval(
            "SELECT needs_review FROM refunds WHERE id = $1", stuck.id))
    await eventually(flagged)
    (listed,) = [r for r in (await refunds_of(service, payment_id)).refunds if r.id == stuck.id]
    assert (listed.status, listed.needs_review, listed.review_reason) == (
        payment_pb2.STATUS_PENDING, True, "REFUND_UNSETTLED")
    return listed


def resolve(refund_id: str, resolution: payment_pb2.Status, *, idempotency_key: str = "",
            tenant: str = "acme", reason: str = "provider statement shows the refund's fate",
            evidence: str = "statement line 7 checked") -> pb.ResolveRefundRequest:
    return pb.ResolveRefundRequest(
        idempotency_key=idempotency_key or key(), tenant=tenant, refund_id=refund_id,
        resolution=resolution, reason=reason, evidence=evidence)


async def refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value


async def resolutions_of(service: Running, payment_id: str) -> list[pb.Resolution]:
    history = (await service.stub.ListProviderExchanges(pb.ListProviderExchangesRequest(
        payment_id=payment_id), metadata=auth())).exchanges
    return [e.resolution for e in history if e.kind == pb.ProviderExchange.KIND_RESOLUTION]


async def events_until(service: Running, payment_id: str,
                       last: Callable[[events_pb2.StatusEvent], bool]
                       ) -> list[events_pb2.StatusEvent]:
    """The payment's events from the start, through the first one `last` accepts."""
    got: list[events_pb2.StatusEvent] = []
    call = service.stub.WatchStatus(pb.WatchStatusRequest(
        filter={"payment_id": payment_id}, after_sequence=0), metadata=auth(), timeout=10.0)
    try:
        async for message in call:
            if message.HasField("event"):
                got.append(message.event)
                if last(message.event):
                    return got
    finally:
        call.cancel()
    raise AssertionError(f"no such event among {got}")


async def test_a_refund_resolved_failed_releases_its_amount_for_a_new_refund(
        malipo: Running) -> None:
    p = await succeeded(malipo)
    stuck = await flagged_refund(malipo, p.id, 1000)
    flagged_payment = await get(malipo, p.id)
    assert (flagged_payment.needs_review, flagged_payment.review_reason) == (
        True, "REFUND_UNSETTLED")
    # Held: nothing more may be refunded while it is unsettled.
    err = await refused(malipo.stub.RefundPayment(refund(p.id, kes(1000)), metadata=auth()))
    assert details(err)[0].reason == "REFUND_EXCEEDS_REMAINING"

    request = resolve(stuck.id, payment_pb2.STATUS_FAILED,
                      evidence="called the customer on +254712345678: nothing came back")
    answer = await malipo.stub.ResolveRefund(request, metadata=OPERATOR)

    r = answer.refund
    assert (r.id, r.status, r.needs_review, r.review_reason) == (
        stuck.id, payment_pb2.STATUS_FAILED, False, "")
    assert (r.failure_reason, r.failure_message) == ("OPERATOR_RESOLVED", request.reason)
    assert (answer.payment.status, answer.payment.needs_review,
            answer.payment.review_reason) == (payment_pb2.STATUS_SUCCEEDED, False, "")
    j = answer.resolution
    assert j.id.startswith("rsl_")
    assert (j.payment_id, j.refund_id, j.operator, j.key_id, j.review_reason) == (
        p.id, stuck.id, "ops", OPERATOR_KEY_ID, "REFUND_UNSETTLED")
    assert (j.from_status, j.to_status) == (payment_pb2.STATUS_PENDING,
                                            payment_pb2.STATUS_FAILED)
    # Stored masked: the journal row, the answer and the event never hold the number.
    assert "+254712345678" not in j.evidence
    assert j.evidence.endswith("678: nothing came back")
    stored = await pool(malipo).fetchrow(
        "SELECT evidence, refund_id FROM payment_resolutions WHERE id = $1", j.id)
    assert stored is not None
    assert (stored["evidence"], stored["refund_id"]) == (j.evidence, stuck.id)
    # Settled: the reconciler no longer polls it.
    assert await pool(malipo).fetchval(
        "SELECT next_poll_at FROM refunds WHERE id = $1", stuck.id) is None
    assert (await get(malipo, p.id)).needs_review is False
    assert (await refunds_of(malipo, p.id)).remaining == kes(1000)

    again = await malipo.stub.RefundPayment(refund(p.id, kes(1000)), metadata=auth())
    assert again.refund.status == payment_pb2.STATUS_SUCCEEDED
    assert again.payment.status == payment_pb2.STATUS_REVERSED
    listed = await refunds_of(malipo, p.id)
    assert [x.status for x in listed.refunds] == [payment_pb2.STATUS_FAILED,
                                                  payment_pb2.STATUS_SUCCEEDED]
    assert (listed.refunded, listed.remaining) == (kes(1000), kes(0))

    events = await events_until(malipo, p.id, lambda e: e.refund_id == stuck.id
                                and e.new_status == payment_pb2.STATUS_FAILED)
    event = events[-1]
    assert (event.old_status, event.reason, event.amount) == (
        payment_pb2.STATUS_PENDING, "OPERATOR_RESOLVED", kes(1000))
    payload = json_format.MessageToDict(event.provider_payload)["resolution"]
    assert payload == {
        "resolution_id": j.id, "refund_id": stuck.id, "operator": "ops",
        "key_id": OPERATOR_KEY_ID, "from_status": "PENDING", "to_status": "FAILED",
        "review_reason": "REFUND_UNSETTLED", "reason": request.reason, "evidence": j.evidence}
    assert "+254712345678" not in str(event)
    assert OPERATOR_KEY not in str(event)


async def test_a_refund_resolved_succeeded_that_completes_the_amount_reverses_the_payment(
        malipo: Running) -> None:
    p = await succeeded(malipo)
    first = await malipo.stub.RefundPayment(refund(p.id, kes(600)), metadata=auth())
    assert first.refund.status == payment_pb2.STATUS_SUCCEEDED
    stuck = await flagged_refund(malipo, p.id, 400)

    answer = await malipo.stub.ResolveRefund(resolve(stuck.id, payment_pb2.STATUS_SUCCEEDED),
                                             metadata=OPERATOR)

    assert (answer.refund.status, answer.refund.failure_reason) == (
        payment_pb2.STATUS_SUCCEEDED, "")
    assert (answer.payment.status, answer.payment.failure_reason,
            answer.payment.needs_review) == (payment_pb2.STATUS_REVERSED, "REFUNDED", False)
    assert (await get(malipo, p.id)).status == payment_pb2.STATUS_REVERSED
    listed = await refunds_of(malipo, p.id)
    # Oldest first: the stuck one was made two days ago.
    assert [(x.id, x.status, x.needs_review) for x in listed.refunds] == [
        (stuck.id, payment_pb2.STATUS_SUCCEEDED, False),
        (first.refund.id, payment_pb2.STATUS_SUCCEEDED, False)]
    assert (listed.refunded, listed.remaining) == (kes(1000), kes(0))

    events = await events_until(malipo, p.id,
                                lambda e: e.new_status == payment_pb2.STATUS_REVERSED)
    moves = [(e.refund_id, e.old_status, e.new_status, e.reason, e.needs_review)
             for e in events[-4:]]
    # Flagged by the reconciler; then, in the resolution's commit, the refund's event, the
    # payment's flag cleared and its reversal, as a provider's confirmation would reverse it.
    assert moves == [
        ("", payment_pb2.STATUS_SUCCEEDED, payment_pb2.STATUS_SUCCEEDED, "REFUND_UNSETTLED",
         True),
        (stuck.id, payment_pb2.STATUS_PENDING, payment_pb2.STATUS_SUCCEEDED,
         "OPERATOR_RESOLVED", False),
        ("", payment_pb2.STATUS_SUCCEEDED, payment_pb2.STATUS_SUCCEEDED, "OPERATOR_RESOLVED",
         False),
        ("", payment_pb2.STATUS_SUCCEEDED, payment_pb2.STATUS_REVERSED, "REFUNDED", False)]
    for said in events[-3:-1]:  # the refund's event and the payment's flag cleared
        payload = json_format.MessageToDict(said.provider_payload)["resolution"]
        assert (payload["refund_id"], payload["resolution_id"], payload["operator"]) == (
            stuck.id, answer.resolution.id, "ops")

    assert await resolutions_of(malipo, p.id) == [answer.resolution]
    history = (await malipo.stub.ListProviderExchanges(pb.ListProviderExchangesRequest(
        payment_id=p.id), metadata=auth())).exchanges
    (journaled,) = [e for e in history if e.kind == pb.ProviderExchange.KIND_RESOLUTION]
    assert (journaled.operation, journaled.detail) == (
        "resolve_refund", f"refund {stuck.id}: PENDING -> SUCCEEDED")


async def test_an_unknown_refund_needs_no_flag_and_a_part_leaves_the_payment_as_it_is(
        malipo: Running) -> None:
    # timeout: the simulator makes the refund and loses its answer; no poll comes for a minute.
    p = await succeeded(malipo, refund_scenario="timeout")
    unknown = await malipo.stub.RefundPayment(refund(p.id, kes(400)), metadata=auth())
    assert (unknown.refund.status, unknown.refund.needs_review) == (
        payment_pb2.STATUS_UNKNOWN, False)
    poll = "SELECT next_poll_at FROM refunds WHERE id = $1"
    assert await pool(malipo).fetchval(poll, unknown.refund.id) is not None
    answer = await malipo.stub.ResolveRefund(
        resolve(unknown.refund.id, payment_pb2.STATUS_SUCCEEDED), metadata=OPERATOR)
    assert answer.refund.status == payment_pb2.STATUS_SUCCEEDED
    assert answer.resolution.review_reason == ""
    assert await pool(malipo).fetchval(poll, unknown.refund.id) is None  # settled: not polled
    assert (answer.payment.status, answer.payment.needs_review) == (
        payment_pb2.STATUS_SUCCEEDED, False)
    listed = await refunds_of(malipo, p.id)
    assert (listed.refunded, listed.remaining) == (kes(400), kes(600))


async def test_the_payment_stays_flagged_while_another_refund_awaits_review(
        malipo: Running) -> None:
    p = await succeeded(malipo)
    first = await flagged_refund(malipo, p.id, 300)
    second = await flagged_refund(malipo, p.id, 300)
    answer = await malipo.stub.ResolveRefund(resolve(first.id, payment_pb2.STATUS_FAILED),
                                             metadata=OPERATOR)
    assert (answer.payment.needs_review, answer.payment.review_reason) == (
        True, "REFUND_UNSETTLED")
    assert (await get(malipo, p.id)).needs_review
    answer = await malipo.stub.ResolveRefund(resolve(second.id, payment_pb2.STATUS_FAILED),
                                             metadata=OPERATOR)
    assert (answer.payment.needs_review, answer.payment.review_reason) == (False, "")
    assert (await refunds_of(malipo, p.id)).remaining == kes(1000)


async def test_only_operator_keys_resolve_refunds(malipo: Running) -> None:
    p = await succeeded(malipo)
    stuck = await flagged_refund(malipo, p.id, 1000)
    request = resolve(stuck.id, payment_pb2.STATUS_FAILED)
    err = await refused(malipo.stub.ResolveRefund(request, metadata=auth()))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert details(err)[0].reason == "OPERATOR_KEY_REQUIRED"
    err = await refused(malipo.stub.ResolveRefund(request))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    (still,) = (await refunds_of(malipo, p.id)).refunds
    assert (still.status, still.needs_review) == (payment_pb2.STATUS_PENDING, True)
    assert await resolutions_of(malipo, p.id) == []


async def test_resolving_a_refund_is_idempotent_by_key(malipo: Running) -> None:
    p = await succeeded(malipo)
    stuck = await flagged_refund(malipo, p.id, 1000)
    request = resolve(stuck.id, payment_pb2.STATUS_SUCCEEDED)
    answers = await asyncio.gather(*(malipo.stub.ResolveRefund(request, metadata=OPERATOR)
                                     for _ in range(5)))
    assert len({a.resolution.id for a in answers}) == 1
    assert {(a.refund.status, a.payment.status) for a in answers} == {
        (payment_pb2.STATUS_SUCCEEDED, payment_pb2.STATUS_REVERSED)}
    replay = await malipo.stub.ResolveRefund(request, metadata=OPERATOR)
    assert (replay.resolution, replay.refund, replay.payment.status) == (
        answers[0].resolution, answers[0].refund, payment_pb2.STATUS_REVERSED)

    other = resolve(stuck.id, payment_pb2.STATUS_FAILED, idempotency_key=request.idempotency_key)
    err = await refused(malipo.stub.ResolveRefund(other, metadata=OPERATOR))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert details(err)[0].reason == "IDEMPOTENCY_KEY_REUSED"
    # A ResolvePayment key is the same operator's key: reused for a refund, it is refused too.
    as_payment = pb.ResolvePaymentRequest(
        idempotency_key=request.idempotency_key, tenant="acme", payment_id=p.id,
        resolution=payment_pb2.STATUS_SUCCEEDED, reason="x", evidence="y")
    err = await refused(malipo.stub.ResolvePayment(as_payment, metadata=OPERATOR))
    assert details(err)[0].reason == "IDEMPOTENCY_KEY_REUSED"

    assert [r.id for r in await resolutions_of(malipo, p.id)] == [answers[0].resolution.id]
    events = await events_until(malipo, p.id,
                                lambda e: e.new_status == payment_pb2.STATUS_REVERSED)
    # One resolution: one event of the refund, one of its payment (flag cleared).
    assert [e.refund_id for e in events if e.reason == "OPERATOR_RESOLVED"] == [stuck.id, ""]


async def test_refusals_change_nothing(malipo: Running) -> None:
    p = await succeeded(malipo)
    settled = await malipo.stub.RefundPayment(refund(p.id, kes(200)), metadata=auth())
    assert settled.refund.status == payment_pb2.STATUS_SUCCEEDED
    stuck = await flagged_refund(malipo, p.id, 300)
    before = (await get(malipo, p.id), await refunds_of(malipo, p.id))

    k = key()
    err = await refused(malipo.stub.ResolveRefund(
        resolve(settled.refund.id, payment_pb2.STATUS_FAILED, idempotency_key=k),
        metadata=OPERATOR))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(err)[0].reason == "NOT_UNDER_REVIEW"
    for bad, field in ((resolve(stuck.id, payment_pb2.STATUS_CANCELLED), "resolution"),
                       (resolve(stuck.id, payment_pb2.STATUS_UNSPECIFIED), "resolution"),
                       (resolve(stuck.id, payment_pb2.STATUS_FAILED, evidence=" "), "evidence"),
                       (resolve(stuck.id, payment_pb2.STATUS_FAILED, reason="r" * 1025),
                        "reason"),
                       (resolve(stuck.id, payment_pb2.STATUS_FAILED, tenant=""), "tenant"),
                       (resolve("", payment_pb2.STATUS_FAILED), "refund_id")):
        err = await refused(malipo.stub.ResolveRefund(bad, metadata=OPERATOR))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in details(err)[1].field_violations] == [field]
    for missing in (resolve(stuck.id, payment_pb2.STATUS_FAILED, tenant="globex"),
                    resolve("rf_nosuchrefund", payment_pb2.STATUS_FAILED)):
        err = await refused(malipo.stub.ResolveRefund(missing, metadata=OPERATOR))
        assert err.code() == grpc.StatusCode.NOT_FOUND
    assert (await get(malipo, p.id), await refunds_of(malipo, p.id)) == before
    assert await resolutions_of(malipo, p.id) == []

    # The refusal kept nothing, not even the key: it works for a request that may be done.
    done = await malipo.stub.ResolveRefund(
        resolve(stuck.id, payment_pb2.STATUS_FAILED, idempotency_key=k), metadata=OPERATOR)
    assert done.refund.status == payment_pb2.STATUS_FAILED
    # Settled now: a second resolution is refused.
    err = await refused(malipo.stub.ResolveRefund(
        resolve(stuck.id, payment_pb2.STATUS_SUCCEEDED), metadata=OPERATOR))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(err)[0].reason == "NOT_UNDER_REVIEW"
