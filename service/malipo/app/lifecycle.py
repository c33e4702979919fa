"""Applying what providers say: record an update, poll, resume a submission."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta

from malipo.app.connector import CallContext, Connector, Exchange
from malipo.app.policies import ExpiryAction, PollPolicy
from malipo.app.services import Services
from malipo.app.unit_of_work import Schedule
from malipo.domain.errors import (
    NotFound,
    ProviderNotFound,
    ProviderOutcomeUnknown,
    ProviderRejectedRequest,
    ProviderUnavailable,
)
from malipo.domain.payments import Change, ChangeKind, Payment, ProviderUpdate, apply_update
from malipo.domain.review import ReviewReason, review_text
from malipo.domain.status import UNSETTLED, Direction, Status


def schedule_after(change: Change, policy: PollPolicy, svc: Services) -> Schedule | None:
    """Poll unsettled payments from when they become unsettled; stop once settled."""
    now = svc.clock()
    after = change.after
    if after.status in UNSETTLED:
        if change.kind is ChangeKind.TRANSITION:
            return Schedule(policy.first_poll(now), reset_attempts=True)
        return None
    if after.status is Status.PENDING:
        return None
    return Schedule(None)


async def record_update(svc: Services, payment_id: str, update: ProviderUpdate, *,
                        actor: str, exchanges: Sequence[Exchange] = (),
                        submitted: bool = False, schedule: Schedule | None = None,
                        known: Payment | None = None) -> Change:
    """Apply one provider update in one transaction: guarded write, event, exchange log.

    With `known` (the payment as the caller just read it) and no exchanges to log, the
    update is first written in one statement without a row lock, guarded by the version it
    was decided from: the usual case costs one round trip instead of four. If the row moved
    meanwhile (or the update brings a reference another payment holds), the locked path
    decides again on fresh data."""
    if known is not None and not exchanges:
        change = await _record_unlocked(svc, known, update, actor=actor, submitted=submitted,
                                        schedule=schedule)
        if change is not None:
            return change
    async with svc.uow() as uow:
        locked = await uow.payments.lock_for_reference(payment_id, update.provider_reference)
        if locked is None:
            raise NotFound(f"payment {payment_id} not found")
        current = locked.payment
        change = apply_update(current, update, svc.clock())
        # The update's reference is the one adopted when the payment had none (apply_update).
        if _first_reference(change) and locked.reference_taken:
            # Never attach one provider transaction to two payments: flag, change nothing else.
            flagged = replace(current, needs_review=True, updated_at=svc.clock(),
                              provider_status=update.provider_status or current.provider_status,
                              review_reason=review_text(
                                  ReviewReason.REFERENCE_REUSED,
                                  "the provider transaction backs another payment"))
            change = Change(ChangeKind.REVIEW, current, flagged, ReviewReason.REFERENCE_REUSED,
                            update.raw)
        plan = _plan(svc, change, schedule)
        if change.writes or submitted or plan is not None:
            wrote = await uow.payments.write(change if change.writes else Change(
                ChangeKind.REFRESH, current, current), actor=actor, schedule=plan,
                submitted=submitted)
            if not wrote:  # impossible under the row lock; kept as a loud guard
                raise RuntimeError(f"guarded update of {payment_id} lost a race under lock")
        await uow.exchanges.add(current, exchanges)
    if _first_reference(change) and locked.callbacks_waiting:
        await _apply_waiting_callbacks(svc, change.after)
    return change


async def _record_unlocked(svc: Services, known: Payment, update: ProviderUpdate, *,
                           actor: str, submitted: bool, schedule: Schedule | None
                           ) -> Change | None:
    """One guarded statement on the caller's copy; None: decide again under the lock."""
    change = apply_update(known, update, svc.clock())
    plan = _plan(svc, change, schedule)
    if not change.writes and not submitted and plan is None:
        return None  # nothing to write on this copy; the row may say otherwise: look again
    async with svc.uow() as uow:
        written = await uow.payments.write_if_unchanged(
            change if change.writes else Change(ChangeKind.REFRESH, known, known),
            actor=actor, schedule=plan, submitted=submitted,
            new_reference=change.after.provider_reference if _first_reference(change) else "")
    if written is None:
        return None
    if written.callbacks_waiting:
        await _apply_waiting_callbacks(svc, change.after)
    return change


def _first_reference(change: Change) -> bool:
    return bool(change.after.provider_reference) and not change.before.provider_reference


def _plan(svc: Services, change: Change, schedule: Schedule | None) -> Schedule | None:
    if schedule is not None:
        return schedule
    return schedule_after(change, svc.connectors.policy(change.before.provider), svc)


async def _apply_waiting_callbacks(svc: Services, payment: Payment) -> None:
    for hook in svc.reference_hooks:
        await hook(payment)


async def flag_for_review(svc: Services, payment_id: str, reason: str, *, actor: str,
                          schedule: Schedule | None = None,
                          provider_payload: Mapping[str, object] | None = None) -> Change:
    """Mark a payment for a person to look at (the field and an event); status untouched.

    `reason` reads "CODE: explanation"; the code becomes the event's reason."""
    async with svc.uow() as uow:
        current = await uow.payments.lock(payment_id)
        if current is None:
            raise NotFound(f"payment {payment_id} not found")
        flagged = replace(current, needs_review=True, review_reason=reason,
                          updated_at=svc.clock())
        change = Change(ChangeKind.REVIEW, current, flagged, reason.split(":", 1)[0],
                        provider_payload or {})
        await uow.payments.write(change, actor=actor, schedule=schedule)
    return change


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
    return await flag_for_review(svc, payment.id, review_text(
                                     ReviewReason.EXPIRED,
                                     "no final answer from the provider in time"),
                                 actor="reconciler", schedule=Schedule(None))


__all__ = ["ProviderNotFound", "expire", "flag_for_review", "poll", "record_update", "resume",
           "submit"]
