"""Talking to the provider about a payment: submit, poll, resume a submission, expire."""

from __future__ import annotations

from datetime import timedelta

from malipo.app.connector import CallContext, Connector
from malipo.app.policies import ExpiryAction
from malipo.app.provider_events import record_update
from malipo.app.recording import flag_for_review
from malipo.app.services import Services
from malipo.app.unit_of_work import Schedule
from malipo.domain.errors import (
    ProviderNotFound,
    ProviderOutcomeUnknown,
    ProviderRejectedRequest,
    ProviderUnavailable,
)
from malipo.domain.payments import Change, Payment, ProviderUpdate
from malipo.domain.review import ReviewReason
from malipo.domain.status import Direction, Status


async def submit(svc: Services, payment: Payment, ctx: CallContext) -> Payment:
    """Hand a PENDING payment to its provider once and record the first answer."""
    connector = svc.connectors.for_payment(payment)
    policy = svc.connectors.policy(payment.provider)
    actor = f"provider:{payment.provider}"
    try:
        if payment.direction is Direction.COLLECTION:
            update = await connector.create_payment(payment, ctx)
        else:
            update = await connector.create_payout(payment, ctx)
    except ProviderOutcomeUnknown as exc:
        update = ProviderUpdate(Status.UNKNOWN, failure_reason="PROVIDER_OUTCOME_UNKNOWN",
                                failure_message=exc.message)
    except ProviderRejectedRequest as exc:
        update = ProviderUpdate(Status.FAILED, failure_reason="PROVIDER_REJECTED",
                                failure_message=exc.message)
    except ProviderUnavailable as exc:
        now = svc.clock()
        if (now - payment.created_at).total_seconds() < policy.submit_give_up_s:
            # Nothing reached the provider: keep it PENDING and let the reconciler retry.
            retry = Schedule(now + timedelta(seconds=policy.interval_s))
            return (await record_update(svc, payment.id, ProviderUpdate(None), actor=actor,
                                        exchanges=ctx.exchanges, schedule=retry,
                                        known=payment)).after
        update = ProviderUpdate(Status.FAILED, failure_reason="PROVIDER_UNAVAILABLE",
                                failure_message=exc.message)
    change = await record_update(svc, payment.id, update, actor=actor,
                                 exchanges=ctx.exchanges, submitted=True, known=payment)
    return change.after


async def poll(svc: Services, payment: Payment, ctx: CallContext, *,
               actor: str = "reconciler") -> Change:
    """Ask the provider and apply the answer (RefreshPayment and the reconciler)."""
    connector = svc.connectors.for_payment(payment)
    update = await connector.fetch_status(payment, ctx)
    return await record_update(svc, payment.id, update, actor=actor, exchanges=ctx.exchanges,
                               known=payment)


async def resume(svc: Services, payment: Payment, connector: Connector,
                 ctx: CallContext) -> Payment:
    """A PENDING payment whose submission never finished (crash, cancelled call).

    Ask first where the provider can find it by our id; resend only where that is safe."""
    caps = connector.capabilities
    if caps.status_by_our_reference:
        try:
            update = await connector.fetch_status(payment, ctx)
        except ProviderNotFound:
            return await submit(svc, payment, ctx)
        change = await record_update(svc, payment.id, update, actor="reconciler",
                                     exchanges=ctx.exchanges, submitted=True)
        return change.after
    if caps.idempotent_submit:
        return await submit(svc, payment, ctx)
    update = ProviderUpdate(Status.UNKNOWN, failure_reason="SUBMISSION_INTERRUPTED",
                            failure_message="the provider may or may not have this payment")
    change = await record_update(svc, payment.id, update, actor="reconciler",
                                 exchanges=ctx.exchanges, submitted=True)
    return change.after


async def expire(svc: Services, payment: Payment) -> Change:
    policy = svc.connectors.policy(payment.provider)
    if policy.on_expiry is ExpiryAction.FAIL and payment.status is not Status.UNKNOWN:
        update = ProviderUpdate(Status.FAILED, failure_reason="EXPIRED",
                                failure_message="no final answer from the provider in time")
        return await record_update(svc, payment.id, update, actor="reconciler",
                                   schedule=Schedule(None))
    # An UNKNOWN outcome is never turned into FAILED without evidence: flag it instead.
    return await flag_for_review(svc, payment.id, ReviewReason.EXPIRED,
                                 "no final answer from the provider in time",
                                 actor="reconciler", schedule=Schedule(None))


__all__ = ["expire", "poll", "resume", "submit"]
