"""Recording what a provider says: the guarded write of one update, or a review flag."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from malipo.app.connector import Exchange
from malipo.app.policies import PollPolicy
from malipo.app.services import Services
from malipo.app.unit_of_work import Schedule, UnitOfWork, Written
from malipo.domain.errors import NotFound
from malipo.domain.payments import Change, ChangeKind, Payment, ProviderUpdate, apply_update
from malipo.domain.refunds import (
    REFUND_SETTLED,
    Refund,
    payment_unflagged,
    settled_by_reversal,
)
from malipo.domain.review import ReviewReason, flagged
from malipo.domain.status import UNSETTLED, Status


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


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording an update committed, and what its caller must do next."""

    change: Change
    # The update gave the payment its first provider reference, and callbacks that named it
    # wait in the journal (they came before we knew it): the caller applies them now.
    callbacks_waiting: bool = False


async def record(svc: Services, payment_id: str, update: ProviderUpdate, *,
                 actor: str, exchanges: Sequence[Exchange] = (),
                 submitted: bool = False, schedule: Schedule | None = None,
                 known: Payment | None = None) -> Recorded:
    """Apply one provider update in one transaction: guarded write, event, exchange log.

    With `known` (the payment as the caller just read it) and no exchanges to log, the
    update is first written in one statement without a row lock, guarded by the version it
    was decided from: the usual case costs one round trip instead of four. If the row moved
    meanwhile (or the update brings a reference another payment holds), the locked path
    decides again on fresh data."""
    if known is not None and not exchanges and update.status is not Status.REVERSED:
        recorded = await _record_unlocked(svc, known, update, actor=actor,
                                          submitted=submitted, schedule=schedule)
        if recorded is not None:
            return recorded
    async with svc.uow() as uow:
        locked = await uow.payments.lock_for_reference(payment_id, update.provider_reference)
        if locked is None:
            raise NotFound(f"payment {payment_id} not found")
        current = locked.payment
        change = apply_update(current, update, svc.clock())
        # The update's reference is the one adopted when the payment had none (apply_update).
        if _first_reference(change) and locked.reference_taken:
            # Never attach one provider transaction to two payments: flag, change nothing else.
            seen = replace(current,
                           provider_status=update.provider_status or current.provider_status)
            code = ReviewReason.REFERENCE_REUSED
            change = Change(ChangeKind.REVIEW, current, flagged(
                seen, code, "the provider transaction backs another payment", svc.clock()),
                code, update.raw)
        plan = _plan(svc, change, schedule)
        row: Payment | None = current  # the row as this commits it, when known here
        if change.writes or submitted or plan is not None:
            write = change if change.writes else Change(ChangeKind.REFRESH, current, current)
            if not await uow.payments.write(write, actor=actor, schedule=plan,
                                            submitted=submitted):
                # impossible under the row lock; kept as a loud guard
                raise RuntimeError(f"guarded update of {payment_id} lost a race under lock")
            row = written_row(write)
            if change.kind is ChangeKind.TRANSITION and change.after.status is Status.REVERSED:
                await _settle_whole_refunds(uow, change.after, svc.clock(), actor)
                row = None  # it may write the payment again
        await uow.exchanges.add(current, exchanges)
    if row is None:
        svc.recent_payments.forget(payment_id)
    else:
        svc.recent_payments.wrote(row)
    return Recorded(change, _first_reference(change) and locked.callbacks_waiting)


def written_row(write: Change) -> Payment:
    """The row one guarded write of `write` leaves: its fields, and the version it bumped."""
    return replace(write.after, version=write.before.version + 1)


@dataclass(frozen=True, slots=True)
class UnlockedWrite:
    """An update decided on a copy read without the row lock, and the guarded write of it."""

    change: Change  # what the update does to the copy
    write: Change  # what is written: the change, or a refresh when only the schedule moves
    plan: Schedule | None
    new_reference: str  # the first provider reference the update brings, if it does


def decide_unlocked(svc: Services, known: Payment, update: ProviderUpdate, *,
                    submitted: bool = False, schedule: Schedule | None = None
                    ) -> UnlockedWrite | None:
    """None: nothing to write on this copy (the row may say otherwise: look again, locked)."""
    change = apply_update(known, update, svc.clock())
    plan = _plan(svc, change, schedule)
    if not change.writes and not submitted and plan is None:
        return None
    return UnlockedWrite(
        change, change if change.writes else Change(ChangeKind.REFRESH, known, known), plan,
        change.after.provider_reference if _first_reference(change) else "")


async def _record_unlocked(svc: Services, known: Payment, update: ProviderUpdate, *,
                           actor: str, submitted: bool, schedule: Schedule | None
                           ) -> Recorded | None:
    """One guarded statement on the caller's copy; None: decide again under the lock."""
    decided = decide_unlocked(svc, known, update, submitted=submitted, schedule=schedule)
    if decided is None:
        return None
    async with svc.uow() as uow:
        written = await uow.payments.write_if_unchanged(
            decided.write, actor=actor, schedule=decided.plan, submitted=submitted,
            new_reference=decided.new_reference)
    if not isinstance(written, Written):  # the row moved (nothing is journaled here)
        svc.recent_payments.forget(known.id)
        return None
    svc.recent_payments.wrote(written_row(decided.write))
    return Recorded(decided.change, written.callbacks_waiting)


async def _settle_whole_refunds(uow: UnitOfWork, payment: Payment, now: datetime,
                                actor: str) -> None:
    """The payment REVERSED by the provider (KKiaPay's revert webhook) is its word that the
    whole amount went back: a whole refund still waiting for that word is SUCCEEDED, in the
    transaction that reverses the payment (the reverse order is app/refunds.py's). A refund
    flagged for review is settled too, and its flag (and the payment's, once no refund
    awaits review) cleared: the provider's word came after all."""
    unflagging = False
    standing: list[Refund] = []  # the payment's refunds as they are once this is written
    for refund in await uow.refunds.for_payment(payment.id):
        if not settled_by_reversal(refund, payment):
            standing.append(refund)
            continue
        settled = replace(refund, status=Status.SUCCEEDED, updated_at=now, failure_reason="",
                          failure_message="", needs_review=False, review_reason="")
        await uow.refunds.write(refund, settled, payment, actor=actor, provider_payload={},
                                schedule=Schedule(None))
        unflagging |= refund.needs_review
        standing.append(settled)
    change = payment_unflagged(payment, standing, now, REFUND_SETTLED, {}) if unflagging else None
    if change is not None:
        await uow.payments.write(change, actor=actor)


def _first_reference(change: Change) -> bool:
    return bool(change.after.provider_reference) and not change.before.provider_reference


def _plan(svc: Services, change: Change, schedule: Schedule | None) -> Schedule | None:
    if schedule is not None:
        return schedule
    return schedule_after(change, svc.connectors.policy(change.before.provider), svc)


async def flag_for_review(svc: Services, payment_id: str, code: ReviewReason, detail: str, *,
                          actor: str, schedule: Schedule | None = None,
                          provider_payload: Mapping[str, object] | None = None) -> Change:
    """Mark a payment for a person to look at (the field and an event); status untouched.
    The code becomes the event's reason."""
    async with svc.uow() as uow:
        current = await uow.payments.lock(payment_id)
        if current is None:
            raise NotFound(f"payment {payment_id} not found")
        change = Change(ChangeKind.REVIEW, current, flagged(current, code, detail, svc.clock()),
                        code, provider_payload or {})
        await uow.payments.write(change, actor=actor, schedule=schedule)
    return change
