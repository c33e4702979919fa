"""Refunds as their own resources: whole or partial, several per collection, capped.

A refund is recorded (PENDING, with its event) before the provider hears of it, in the same
transaction that claims the idempotency key and checks the cap under the payment's row lock;
the provider's answer is then recorded with the refund's change and, when refunds reach the
whole amount, the payment's move to REVERSED, in one transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from malipo.app.commands import RefundPayment, check_refund
from malipo.app.connector import CallContext, Connector, Exchange, PartialRefunds
from malipo.app.payments import get_payment
from malipo.app.services import Services
from malipo.app.unit_of_work import IdempotencyRecord, Schedule, UnitOfWork
from malipo.domain.errors import (
    FailedPrecondition,
    FieldViolation,
    IdempotencyKeyReused,
    InvalidRequest,
    MalipoError,
    NotFound,
    ProviderOutcomeUnknown,
    ProviderRejectedRequest,
    ProviderUnavailable,
    Unavailable,
    Unsupported,
)
from malipo.domain.ids import new_refund_id
from malipo.domain.money import Money
from malipo.domain.payments import Payment, ProviderUpdate, apply_update
from malipo.domain.refunds import (
    REFUND_SETTLED,
    REFUND_UNSETTLED,
    Refund,
    RefundTotals,
    can_move_refund,
    is_whole,
    payment_unflagged,
    refund_status,
    refund_totals,
)
from malipo.domain.status import Direction, Status

OPERATION = "refund"


@dataclass(frozen=True, slots=True)
class Refunded:
    """What RefundPayment answers: the payment as it is now and the refund (None only for a
    replay of a key used before refunds were resources)."""

    payment: Payment
    refund: Refund | None


async def refund_payment(svc: Services, cmd: RefundPayment, deadline: float | None) -> Refunded:
    check_refund(cmd)
    record = IdempotencyRecord(cmd.tenant, cmd.idempotency_key, OPERATION, cmd.fingerprint(),
                               new_refund_id())
    async with svc.uow() as uow:
        existing = await uow.keys.claim(record)
        # Any refusal while recording rolls the key back with everything else.
        recorded = None if existing else await _record_refund(svc, uow, cmd, record.resource_id)
    if recorded is None:
        assert existing is not None
        if existing.operation != OPERATION or existing.fingerprint != record.fingerprint:
            raise IdempotencyKeyReused(
                f"idempotency key {cmd.idempotency_key!r} was used with a different request")
        return await _replay(svc, cmd.tenant, existing.resource_id, cmd.payment_id)
    payment, refund, connector = recorded
    # Shielded: a caller who hangs up must not leave the provider's answer unrecorded.
    task = svc.submissions.keep(_send(svc, cmd, payment, refund, connector,
                                      CallContext(deadline=deadline)))
    return await asyncio.shield(task)


async def _record_refund(svc: Services, uow: UnitOfWork, cmd: RefundPayment,
                         refund_id: str) -> tuple[Payment, Refund, Connector]:
    payment = await uow.payments.lock(cmd.payment_id)
    if payment is None or payment.tenant != cmd.tenant:
        raise NotFound(f"payment {cmd.payment_id} not found")
    connector = svc.connectors.for_payment(payment)
    caps = connector.capabilities
    if not caps.refunds:
        raise FailedPrecondition(f"{payment.provider} does not support refunds",
                                 reason="NOT_SUPPORTED_BY_PROVIDER")
    if payment.status is not Status.SUCCEEDED or payment.direction is not Direction.COLLECTION:
        raise FailedPrecondition(
            f"only a SUCCEEDED collection can be refunded (it is {payment.status})",
            reason="INVALID_STATE")
    currency = payment.amount.currency
    if cmd.amount_minor is not None and cmd.currency != currency.code:
        raise InvalidRequest(FieldViolation("amount.currency",
                                            f"must be the payment's currency {currency.code}"))
    totals = await uow.refunds.totals(payment.id)
    remaining = payment.amount.minor - totals.held
    amount = remaining if cmd.amount_minor is None else cmd.amount_minor
    if remaining <= 0 or amount > remaining:
        raise _exceeds(payment, remaining)
    whole = amount == payment.amount.minor
    if not whole and not (caps.partial_refunds and isinstance(connector, PartialRefunds)):
        raise FailedPrecondition(
            f"{payment.provider} refunds only the whole amount "
            f"({Money(payment.amount.minor, currency)}), in one refund",
            reason="PARTIAL_REFUNDS_NOT_SUPPORTED")
    now = svc.clock()
    refund = Refund(id=refund_id, payment_id=payment.id, tenant=payment.tenant,
                    amount=Money(amount, currency), idempotency_key=cmd.idempotency_key,
                    created_at=now, updated_at=now, reason=cmd.reason)
    # Polled after the grace period only if its provider answer is never recorded (a crash
    # between this commit and the call): app/refund_polls.py settles it then.
    first_poll = now + timedelta(seconds=svc.connectors.policy(payment.provider).submit_grace_s)
    if not await uow.refunds.add(refund, payment, actor=f"tenant:{cmd.tenant}",
                                 first_poll=first_poll):
        # The lock makes this unreachable; the statement's own check is the last word.
        raise _exceeds(payment, remaining)
    return payment, refund, connector


def _exceeds(payment: Payment, remaining: int) -> FailedPrecondition:
    left = Money(max(0, remaining), payment.amount.currency)
    return FailedPrecondition(
        f"refunds of payment {payment.id} may add up to its amount {payment.amount}; "
        f"{left} remains to refund", reason="REFUND_EXCEEDS_REMAINING",
        metadata={"remaining_minor": str(left.minor), "currency": left.currency.code})


async def _send(svc: Services, cmd: RefundPayment, payment: Payment, refund: Refund,
                connector: Connector, ctx: CallContext) -> Refunded:
    actor = f"tenant:{cmd.tenant}"
    try:
        update = await send_refund(connector, payment, refund, ctx)
    except (ProviderRejectedRequest, ProviderUnavailable, FailedPrecondition,
            Unsupported) as exc:
        # Nothing was refunded: the refund fails and the key is given back for a retry.
        await record_refund_answer(svc, refund, ProviderUpdate(
            Status.FAILED, failure_reason=exc.reason, failure_message=exc.message),
            actor=actor, reason=cmd.reason, exchanges=ctx.exchanges)
        async with svc.uow() as uow:
            await uow.keys.release(cmd.tenant, cmd.idempotency_key)
        raise _refused(exc) from None
    return await record_refund_answer(svc, refund, update, actor=actor, reason=cmd.reason,
                                      exchanges=ctx.exchanges)


async def send_refund(connector: Connector, payment: Payment, refund: Refund,
                      ctx: CallContext) -> ProviderUpdate:
    """The provider call for `refund`; an answer lost after sending is UNKNOWN, which keeps
    its amount held, so nothing is refunded twice. Refusals raise (nothing was refunded)."""
    try:
        if is_whole(refund, payment):
            return await connector.refund(payment, ctx)
        assert isinstance(connector, PartialRefunds)  # checked with the capability
        return await connector.refund_part(payment, refund, ctx)
    except ProviderOutcomeUnknown as exc:
        return ProviderUpdate(Status.UNKNOWN, failure_reason="PROVIDER_OUTCOME_UNKNOWN",
                              failure_message=exc.message)


def _refused(exc: MalipoError) -> MalipoError:
    """Today's answers to a refund the provider would not make."""
    if isinstance(exc, ProviderUnavailable):
        return Unavailable(exc.message)
    if isinstance(exc, ProviderRejectedRequest):
        return FailedPrecondition(f"the provider refused the refund: {exc.message}",
                                  reason="REFUND_REFUSED")
    return exc


async def record_refund_answer(svc: Services, refund: Refund, update: ProviderUpdate, *,
                               actor: str, reason: str = "",
                               exchanges: Sequence[Exchange] = ()) -> Refunded:
    """Record what the provider said of `refund` (a whole refund's answer speaks of the
    payment: REVERSED once done) with, when refunds reach the whole amount, the payment's
    move to REVERSED, in one transaction."""
    async with svc.uow() as uow:
        payment = await uow.payments.lock(refund.payment_id)
        current = await uow.refunds.get(refund.id, tenant=refund.tenant)
        assert payment is not None
        assert current is not None
        whole = is_whole(refund, payment)
        status = refund_status(update.status) if whole else update.status or Status.PROCESSING
        settled = status not in REFUND_UNSETTLED
        after = replace(
            current, status=status, updated_at=svc.clock(),
            provider_reference="" if whole else (update.provider_reference
                                                 or current.provider_reference),
            provider_status=update.provider_status or current.provider_status,
            failure_reason=update.failure_reason if status is not Status.SUCCEEDED else "",
            failure_message=update.failure_message if status is not Status.SUCCEEDED else "",
            # A late final answer settles a flagged refund: nothing is left to review.
            needs_review=current.needs_review and not settled,
            review_reason=current.review_reason if not settled else "")
        if can_move_refund(current.status, status):
            policy = svc.connectors.policy(payment.provider)
            schedule = (Schedule(policy.first_poll(svc.clock()), reset_attempts=True)
                        if not settled else Schedule(None))
            await uow.refunds.write(current, after, payment, actor=actor,
                                    provider_payload=update.raw, schedule=schedule)
            if current.needs_review and settled:
                payment = await _unflag(svc, uow, payment, update, actor)
        else:
            after = current
        payment = await reverse_when_refunded(svc, uow, payment, update, whole=whole,
                                              reason=reason, actor=actor)
        await uow.exchanges.add(payment, exchanges)
    return Refunded(payment, after)


async def _unflag(svc: Services, uow: UnitOfWork, payment: Payment, update: ProviderUpdate,
                  actor: str) -> Payment:
    """The locked payment, its REFUND_UNSETTLED flag cleared if no other refund awaits review:
    the provider's answer came after all (ResolveRefund clears it the same way)."""
    change = payment_unflagged(payment, await uow.refunds.for_payment(payment.id), svc.clock(),
                               REFUND_SETTLED, update.raw)
    if change is None:
        return payment
    await uow.payments.write(change, actor=actor)
    return change.after


async def reverse_when_refunded(svc: Services, uow: UnitOfWork, payment: Payment,
                                update: ProviderUpdate, *, whole: bool, reason: str,
                                actor: str) -> Payment:
    """The locked `payment` once a refund's outcome is written beside it: REVERSED when that
    outcome (a whole refund's) or the succeeded refunds' total says all of it went back."""
    reversal = _reversal(payment, update, whole, reason, await uow.refunds.totals(payment.id))
    if reversal is None:
        return payment
    change = apply_update(payment, reversal, svc.clock())
    if not change.writes:
        return payment
    await uow.payments.write(change, actor=actor, schedule=Schedule(None))
    return change.after


def _reversal(payment: Payment, update: ProviderUpdate, whole: bool, reason: str,
              totals: RefundTotals) -> ProviderUpdate | None:
    """What the payment itself hears: a whole refund's answer as the provider gave it (as
    before refunds were resources); after partial ones, REVERSED once they add up."""
    if whole:
        if update.status is Status.FAILED:
            return None  # the refund failed; the payment keeps its status
        if reason and update.status is not None:
            return replace(update, failure_reason=update.failure_reason or "REFUND",
                           failure_message=update.failure_message or reason)
        return update
    if totals.refunded < payment.amount.minor:
        return None
    return ProviderUpdate(Status.REVERSED, failure_reason="REFUNDED",
                          failure_message=reason or "refunds reached the whole amount")


async def _replay(svc: Services, tenant: str, refund_id: str, payment_id: str) -> Refunded:
    async with svc.uow() as uow:
        refund = await uow.refunds.get(refund_id, tenant=tenant)
        payment = await uow.payments.get(refund.payment_id if refund else payment_id,
                                         tenant=tenant)
    if payment is None:
        raise NotFound(f"payment {payment_id} not found")
    return Refunded(payment, refund)


@dataclass(frozen=True, slots=True)
class RefundList:
    refunds: Sequence[Refund]
    refunded: Money
    remaining: Money


async def list_refunds(svc: Services, tenant: str, payment_id: str) -> RefundList:
    payment = await get_payment(svc, tenant, payment_id, Direction.COLLECTION)
    async with svc.uow() as uow:
        refunds = await uow.refunds.for_payment(payment_id)
    totals = refund_totals(refunds)  # summed from the rows just read: no query of its own
    currency = payment.amount.currency
    refundable = payment.status is Status.SUCCEEDED
    remaining = payment.amount.minor - totals.held if refundable else 0
    return RefundList(refunds, Money(totals.refunded, currency), Money(remaining, currency))
