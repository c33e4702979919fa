"""Settling refunds left unsettled: PENDING (accepted, maybe never sent: a crash between the
commit and the provider call), PROCESSING, or UNKNOWN (sent, answer lost).

The reconciler leases each due refund with its payment (store/refund_leases.py) and calls
`reconcile_refund`. Nothing here turns a refund FAILED without the provider saying so:
FAILED frees its amount under the cap, so a wrong FAILED could refund the customer twice."""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum

from malipo.app.connector import CallContext, Connector, RefundStatus
from malipo.app.refunds import record_refund_answer, send_refund
from malipo.app.services import Services
from malipo.domain.errors import (
    FailedPrecondition,
    NotFound,
    ProviderNotFound,
    ProviderRejectedRequest,
    Unsupported,
)
from malipo.domain.payments import Change, ChangeKind, Payment, ProviderUpdate
from malipo.domain.refunds import REFUND_UNSETTLED, Refund, is_whole, settled_by_reversal
from malipo.domain.review import ReviewReason, flagged
from malipo.domain.status import Status

ACTOR = "reconciler"


class Step(StrEnum):
    DONE = "DONE"      # settled meanwhile: stop polling
    SETTLE = "SETTLE"  # a whole refund of a payment now REVERSED: SUCCEEDED
    REVIEW = "REVIEW"  # past the expiry rule: flag it, keep its status, stop polling
    ASK = "ASK"        # ask the provider where the refund stands
    RESEND = "RESEND"  # send it again: the provider dedupes on our refund id
    WAIT = "WAIT"      # nothing to learn now: poll later


def next_step(refund: Refund, payment: Payment, *, can_ask: bool, resend_safe: bool,
              expired: bool) -> Step:
    """What to do with a leased refund. A PENDING one is resent blindly only where the
    provider dedupes; elsewhere it is asked for first (ProviderNotFound then allows sending,
    see `reconcile_refund`)."""
    if refund.status not in REFUND_UNSETTLED or refund.needs_review:
        return Step.DONE
    if settled_by_reversal(refund, payment):
        return Step.SETTLE
    if expired:
        return Step.REVIEW
    if can_ask:
        return Step.ASK
    if refund.status is Status.PENDING and resend_safe:
        return Step.RESEND
    return Step.WAIT


def send_after_not_found(refund: Refund, *, resend_safe: bool) -> bool:
    """The provider has no such refund. A PENDING one never reached it (we record the
    answer before anything else moves it), so it may be sent; an UNKNOWN one may still be
    on its way there, so only a deduping provider may get it again."""
    return refund.status is Status.PENDING or resend_safe


async def reconcile_refund(svc: Services, refund: Refund, payment: Payment, attempts: int,
                           connector: Connector, ctx: CallContext) -> Refund:
    """Move one leased refund of `payment` on; the refund as it now stands. Provider errors
    other than a refusal propagate to the reconciler (backoff, circuit breaker)."""
    policy = svc.connectors.policy(payment.provider)
    caps = connector.capabilities
    resend_safe = caps.idempotent_refunds
    step = next_step(refund, payment, can_ask=isinstance(connector, RefundStatus),
                     resend_safe=resend_safe,
                     expired=policy.expired(refund.created_at, attempts, svc.clock()))
    if step is Step.DONE or step is Step.WAIT:
        return refund
    if step is Step.SETTLE:
        update = ProviderUpdate(Status.REVERSED, failure_reason="REFUNDED")
        return (await record_refund_answer(svc, refund, update, actor=ACTOR)).refund or refund
    if step is Step.REVIEW:
        return await _flag(svc, refund)
    if step is Step.ASK:
        assert isinstance(connector, RefundStatus)
        try:
            update = await connector.fetch_refund_status(payment, refund, ctx)
        except ProviderNotFound:
            if not send_after_not_found(refund, resend_safe=resend_safe):
                return refund
            update = await _send(connector, payment, refund, ctx)
        else:
            if is_whole(refund, payment) and update.status is Status.SUCCEEDED:
                # A whole refund's answer speaks of the payment (record_refund_answer).
                update = replace(update, status=Status.REVERSED,
                                 failure_reason=update.failure_reason or "REFUNDED")
    else:
        update = await _send(connector, payment, refund, ctx)
    recorded = await record_refund_answer(svc, refund, update, actor=ACTOR,
                                          exchanges=ctx.exchanges)
    return recorded.refund or refund


async def _send(connector: Connector, payment: Payment, refund: Refund,
                ctx: CallContext) -> ProviderUpdate:
    try:
        return await send_refund(connector, payment, refund, ctx)
    except (ProviderRejectedRequest, FailedPrecondition, Unsupported) as exc:
        # The provider said no before doing anything: evidence that nothing was refunded.
        return ProviderUpdate(Status.FAILED, failure_reason=exc.reason,
                              failure_message=exc.message)


async def _flag(svc: Services, refund: Refund) -> Refund:
    """The refund and its payment flagged in one transaction; the payment's flag puts it in
    the review queue (ListPayments filter.needs_review) with its event."""
    code = ReviewReason.REFUND_UNSETTLED
    detail = (f"refund {refund.id} of {refund.amount} is still {refund.status}, "
              "with no final answer from the provider in time")
    now = svc.clock()
    flagged_refund = flagged(refund, code, detail, now)
    async with svc.uow() as uow:
        payment = await uow.payments.lock(refund.payment_id)
        if payment is None:
            raise NotFound(f"payment {refund.payment_id} not found")
        if not await uow.refunds.flag(flagged_refund):
            return refund  # it moved meanwhile: the next lease decides again
        await uow.payments.write(Change(ChangeKind.REVIEW, payment,
                                        flagged(payment, code, detail, now), code, {}),
                                 actor=ACTOR)
    return flagged_refund
