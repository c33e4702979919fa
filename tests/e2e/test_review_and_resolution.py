# pyright: basic
"""The review queue and operators' resolutions end to end: the real server over a socket,
the simulator provider, its signed callbacks and the reconciler's expiry rule, PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import json_format

from malipo.app.policies import ExpiryAction
from malipo.config import PolicyConfig
from malipo.payments.v1 import payment_pb2, payment_service_pb2
from tests.e2e.test_callbacks_and_reconciler import body, post
from tests.e2e.test_payments_api import details, wait_status
from tests.e2e.test_watch_status import collect
from tests.harness import Running, auth, create_request, running, settings_for

pb = payment_service_pb2
OPERATOR_KEY = "op-key-ops-0123456789"
OPERATOR_KEY_ID = hashlib.sha256(OPERATOR_KEY.encode()).hexdigest()[:8]
OPERATOR = (("authorization", f"Bearer {OPERATOR_KEY}"),)
# Long enough for no poll to settle a payment first: the reconciler's first look at an
# unsettled payment finds it expired and, on_expiry=REVIEW, flags it EXPIRED.
POLICY = PolicyConfig(start_after_s=1.0, interval_s=0.3, backoff=1.0, max_interval_s=1.0,
                      expire_after_s=0.5, on_expiry=ExpiryAction.REVIEW, submit_grace_s=1.0,
                      submit_give_up_s=30.0)


@pytest.fixture(scope="module")
async def malipo(database_url: str) -> AsyncIterator[Running]:
    settings = settings_for(database_url, policies={"simulator": POLICY},
                            operator_keys=f"ops={OPERATOR_KEY}")
    async with running(settings) as service:
        yield service


def key() -> str:
    return f"rv-{uuid.uuid4()}"


async def get(service: Running, payment_id: str) -> payment_pb2.Payment:
    return (await service.stub.GetPayment(pb.GetPaymentRequest(payment_id=payment_id),
                                          metadata=auth())).payment


async def flagged(service: Running, phone: str) -> payment_pb2.Payment:
    """A payment the reconciler flags EXPIRED: stay_processing (05) stays PROCESSING,
    timeout (04) stays UNKNOWN (never failed without evidence)."""
    created = (await service.stub.CreatePayment(create_request(key(), phone=phone),
                                                metadata=auth())).payment
    deadline = asyncio.get_running_loop().time() + 15
    while asyncio.get_running_loop().time() < deadline:
        got = await get(service, created.id)
        if got.needs_review:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"{created.id} was never flagged")


async def mismatched(service: Running) -> payment_pb2.Payment:
    """A SUCCEEDED payment, then a signed callback claiming another amount: AMOUNT_MISMATCH."""
    created = (await service.stub.CreatePayment(create_request(key()), metadata=auth())).payment
    await wait_status(service, created.id, payment_pb2.STATUS_SUCCEEDED)
    status, _ = await post(service, body(created.id, "SUCCEEDED", amount=999, event=key()))
    assert status == 200
    got = await get(service, created.id)
    assert got.needs_review
    return got


def resolve(payment: payment_pb2.Payment, resolution: payment_pb2.Status, *,
            idempotency_key: str = "",
            tenant: str = "acme", evidence: str = "statement line 42 checked",
            reason: str = "provider statement shows the outcome") -> pb.ResolvePaymentRequest:
    return pb.ResolvePaymentRequest(
        idempotency_key=idempotency_key or key(), tenant=tenant, payment_id=payment.id,
        resolution=resolution, reason=reason, evidence=evidence)


async def queue(service: Running) -> set[str]:
    listed = await service.stub.ListPayments(pb.ListPaymentsRequest(
        page_size=100, filter=pb.ListFilter(needs_review=True)), metadata=auth())
    return {p.id for p in listed.payments}


async def refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value


async def test_review_queue_lists_flagged_payments_with_stable_codes(malipo: Running) -> None:
    expired = await flagged(malipo, "+254712345605")
    amount = await mismatched(malipo)
    fine = (await malipo.stub.CreatePayment(create_request(key()), metadata=auth())).payment
    await wait_status(malipo, fine.id, payment_pb2.STATUS_SUCCEEDED)

    assert (expired.status, expired.review_reason) == (payment_pb2.STATUS_PROCESSING,
                                                       "EXPIRED")
    assert expired.review_message == "no final answer from the provider in time"
    assert (amount.status, amount.review_reason) == (payment_pb2.STATUS_SUCCEEDED,
                                                     "AMOUNT_MISMATCH")
    assert amount.review_message == "provider reported 9.99 KES, expected 10.00 KES"
    listed = await queue(malipo)
    assert {expired.id, amount.id} <= listed
    assert fine.id not in listed
    everything = await malipo.stub.ListPayments(pb.ListPaymentsRequest(page_size=100),
                                                metadata=auth())
    assert fine.id in {p.id for p in everything.payments}
    payouts = await malipo.stub.ListPayouts(pb.ListPayoutsRequest(
        filter=pb.ListFilter(needs_review=True)), metadata=auth())
    assert not {p.id for p in payouts.payouts} & listed
    other = await malipo.stub.ListPayments(pb.ListPaymentsRequest(
        filter=pb.ListFilter(needs_review=True)), metadata=auth("globex"))
    assert not other.payments


async def test_operator_fails_an_expired_payment_and_the_event_says_who_why_and_evidence(
        malipo: Running) -> None:
    p = await flagged(malipo, "+254712345605")
    request = resolve(p, payment_pb2.STATUS_FAILED,
                      evidence="called the customer on +254712345678: never paid")
    answer = await malipo.stub.ResolvePayment(request, metadata=OPERATOR)

    got = answer.payment
    assert (got.status, got.needs_review, got.review_reason) == (
        payment_pb2.STATUS_FAILED, False, "")
    assert got.failure_reason == "OPERATOR_RESOLVED"
    r = answer.resolution
    assert r.id.startswith("rsl_")
    assert (r.operator, r.key_id, r.review_reason) == ("ops", OPERATOR_KEY_ID, "EXPIRED")
    assert (r.from_status, r.to_status) == (payment_pb2.STATUS_PROCESSING,
                                            payment_pb2.STATUS_FAILED)
    assert "+254712345678" not in r.evidence
    assert r.evidence.endswith("678: never paid")
    assert p.id not in await queue(malipo)

    events = await collect(malipo, "acme", after=0, payment_id=p.id)
    last = events[-1]
    assert (last.old_status, last.new_status, last.reason) == (
        payment_pb2.STATUS_PROCESSING, payment_pb2.STATUS_FAILED, "OPERATOR_RESOLVED")
    assert not last.needs_review
    payload = json_format.MessageToDict(last.provider_payload)["resolution"]
    assert payload == {
        "resolution_id": r.id, "operator": "ops", "key_id": OPERATOR_KEY_ID,
        "from_status": "PROCESSING", "to_status": "FAILED", "review_reason": "EXPIRED",
        "reason": request.reason, "evidence": r.evidence}
    assert OPERATOR_KEY not in str(last)

    history = (await malipo.stub.ListProviderExchanges(pb.ListProviderExchangesRequest(
        payment_id=p.id), metadata=auth())).exchanges
    journaled = [e for e in history if e.kind == pb.ProviderExchange.KIND_RESOLUTION]
    assert [e.resolution for e in journaled] == [r]
    assert journaled[0].detail == "PROCESSING -> FAILED"


async def test_an_unknown_payment_is_resolved_as_succeeded(malipo: Running) -> None:
    p = await flagged(malipo, "+254712345604")
    assert p.status == payment_pb2.STATUS_UNKNOWN
    answer = await malipo.stub.ResolvePayment(resolve(p, payment_pb2.STATUS_SUCCEEDED),
                                              metadata=OPERATOR)
    assert answer.payment.status == payment_pb2.STATUS_SUCCEEDED
    assert (answer.payment.failure_reason, answer.payment.needs_review) == ("", False)
    assert (await get(malipo, p.id)).status == payment_pb2.STATUS_SUCCEEDED


async def test_a_flagged_payment_may_keep_its_status_and_lose_the_flag(malipo: Running) -> None:
    p = await mismatched(malipo)
    answer = await malipo.stub.ResolvePayment(resolve(p, payment_pb2.STATUS_SUCCEEDED),
                                              metadata=OPERATOR)
    assert (answer.payment.status, answer.payment.needs_review) == (
        payment_pb2.STATUS_SUCCEEDED, False)
    events = await collect(malipo, "acme", after=0, payment_id=p.id, until_final=False,
                           limit=5)
    assert [(e.old_status, e.new_status, e.reason) for e in events[-2:]] == [
        (payment_pb2.STATUS_SUCCEEDED, payment_pb2.STATUS_SUCCEEDED, "AMOUNT_MISMATCH"),
        (payment_pb2.STATUS_SUCCEEDED, payment_pb2.STATUS_SUCCEEDED, "OPERATOR_RESOLVED")]


async def test_only_operator_keys_resolve_and_operator_keys_do_nothing_else(
        malipo: Running) -> None:
    p = await mismatched(malipo)
    err = await refused(malipo.stub.ResolvePayment(resolve(p, payment_pb2.STATUS_SUCCEEDED),
                                                   metadata=auth()))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert details(err)[0].reason == "OPERATOR_KEY_REQUIRED"
    err = await refused(malipo.stub.ResolvePayment(resolve(p, payment_pb2.STATUS_SUCCEEDED)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    err = await refused(malipo.stub.GetPayment(pb.GetPaymentRequest(payment_id=p.id),
                                               metadata=OPERATOR))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert details(err)[0].reason == "TENANT_KEY_REQUIRED"
    assert OPERATOR_KEY not in (err.details() or "")
    assert (await get(malipo, p.id)).needs_review


async def test_resolutions_follow_the_transition_table_and_refusals_change_nothing(
        malipo: Running) -> None:
    p = await mismatched(malipo)  # SUCCEEDED: may only stay SUCCEEDED
    k = key()
    err = await refused(malipo.stub.ResolvePayment(
        resolve(p, payment_pb2.STATUS_FAILED, idempotency_key=k), metadata=OPERATOR))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(err)[0].reason == "TRANSITION_NOT_ALLOWED"
    assert (await get(malipo, p.id)).needs_review
    # The refusal kept nothing, not even the key: it works for the right request.
    ok = await malipo.stub.ResolvePayment(resolve(p, payment_pb2.STATUS_SUCCEEDED,
                                                  idempotency_key=k), metadata=OPERATOR)
    assert not ok.payment.needs_review

    err = await refused(malipo.stub.ResolvePayment(resolve(p, payment_pb2.STATUS_SUCCEEDED),
                                                   metadata=OPERATOR))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(err)[0].reason == "NOT_UNDER_REVIEW"

    q = await mismatched(malipo)
    for bad, field in ((resolve(q, payment_pb2.STATUS_REVERSED), "resolution"),
                       (resolve(q, payment_pb2.STATUS_UNSPECIFIED), "resolution"),
                       (resolve(q, payment_pb2.STATUS_SUCCEEDED, evidence=""), "evidence"),
                       (resolve(q, payment_pb2.STATUS_SUCCEEDED, tenant=""), "tenant")):
        err = await refused(malipo.stub.ResolvePayment(bad, metadata=OPERATOR))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in details(err)[1].field_violations] == [field]
    err = await refused(malipo.stub.ResolvePayment(
        resolve(q, payment_pb2.STATUS_SUCCEEDED, tenant="globex"), metadata=OPERATOR))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert (await get(malipo, q.id)).needs_review


async def test_resolution_is_idempotent_by_key(malipo: Running) -> None:
    p = await mismatched(malipo)
    request = resolve(p, payment_pb2.STATUS_SUCCEEDED)
    answers = await asyncio.gather(*(malipo.stub.ResolvePayment(request, metadata=OPERATOR)
                                     for _ in range(10)))
    assert len({a.resolution.id for a in answers}) == 1
    assert all(a.payment.status == payment_pb2.STATUS_SUCCEEDED for a in answers)
    history = (await malipo.stub.ListProviderExchanges(pb.ListProviderExchangesRequest(
        payment_id=p.id), metadata=auth())).exchanges
    assert [e.resolution.id for e in history
            if e.kind == pb.ProviderExchange.KIND_RESOLUTION] == [answers[0].resolution.id]
    events = await collect(malipo, "acme", after=0, payment_id=p.id, until_final=False,
                           limit=10, timeout=3.0)
    assert [e.reason for e in events].count("OPERATOR_RESOLVED") == 1

    other = pb.ResolvePaymentRequest()
    other.CopyFrom(request)
    other.evidence = "something else"
    err = await refused(malipo.stub.ResolvePayment(other, metadata=OPERATOR))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert details(err)[0].reason == "IDEMPOTENCY_KEY_REUSED"
