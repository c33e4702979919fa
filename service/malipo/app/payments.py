"""Use cases of the PaymentService: create, read, list, confirm, cancel, refresh (refunds:
app/refunds.py; operator resolutions: app/review.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from malipo.app.catalogue import check_payment
from malipo.app.commands import (
    ChangePayment,
    ConfirmPayment,
    CreatePayment,
    check_create,
    check_key,
    check_payment_id,
)
from malipo.app.connector import CallContext, Confirmation
from malipo.app.lifecycle import poll, submit
from malipo.app.provider_events import record_update
from malipo.app.services import Services
from malipo.app.unit_of_work import (
    IdempotencyRecord,
    KeyHolder,
    KeyTaken,
    ListQuery,
    Schedule,
)
from malipo.domain.errors import (
    FailedPrecondition,
    FieldViolation,
    IdempotencyKeyReused,
    InvalidRequest,
    NotFound,
    ProviderNotFound,
    ProviderOutcomeUnknown,
    ProviderRejectedRequest,
    ProviderUnavailable,
    Unavailable,
    Unsupported,
)
from malipo.domain.ids import new_payment_id, new_payout_id
from malipo.domain.money import Money
from malipo.domain.payments import Payment, ProviderUpdate
from malipo.domain.status import FINAL, Direction, Status

# How long a duplicate create waits for the first one's provider answer.
REPLAY_WAIT_S = 35.0
# It stops waiting this long before the caller's deadline: time to read the payment and answer.
REPLAY_ANSWER_S = 0.2


async def create_payment(svc: Services, cmd: CreatePayment, deadline: float | None) -> Payment:
    if (cmd.tenant, cmd.idempotency_key) in svc.recent_keys:
        replayed = await _replay_recent(svc, cmd, deadline)
        if replayed is not None:
            return replayed
    check_create(cmd)
    connector = svc.connectors.resolve(cmd.provider, cmd.account, cmd.tenant)
    caps = connector.capabilities
    # A well-formed request the provider cannot serve: FAILED_PRECONDITION, as ListProviders'
    # capabilities announce, not a field error.
    if cmd.direction is Direction.COLLECTION and not caps.collections:
        raise Unsupported(f"{cmd.provider} takes no collections (capabilities.collections is "
                          "false in ListProviders)")
    if cmd.direction is Direction.PAYOUT and not caps.payouts:
        raise Unsupported(f"{cmd.provider} makes no payouts (capabilities.payouts is false in "
                          "ListProviders)")
    now = svc.clock()
    payment = Payment(
        id=new_payment_id() if cmd.direction is Direction.COLLECTION else new_payout_id(),
        tenant=cmd.tenant, direction=cmd.direction, provider=cmd.provider,
        account=connector.account.name, method=cmd.method,
        amount=Money.of(cmd.amount_minor, cmd.currency), idempotency_key=cmd.idempotency_key,
        created_at=now, updated_at=now,
        channel=cmd.channel or connector.catalogue().default_channel, country=cmd.country,
        customer=cmd.customer, provider_fields=dict(cmd.provider_fields),
        description=cmd.description, metadata=dict(cmd.metadata),
    )
    violations = check_payment(payment, connector.catalogue())
    if violations:
        raise InvalidRequest(violations, reason="PROVIDER_RULE")
    connector.validate(payment)
    await _check_daily_limit(svc, payment)

    policy = svc.connectors.policy(payment.provider)
    record = _create_record(cmd, payment.id)
    holder: KeyHolder | None = None
    async with svc.uow() as uow:
        # The key and the payment in one atomic write. The schedule is the resume point if
        # we die before the provider's answer is recorded.
        added = await uow.payments.add(payment, actor=f"tenant:{cmd.tenant}", key=record,
                                       schedule=Schedule(now + timedelta(
                                           seconds=policy.submit_grace_s)))
        if isinstance(added, KeyTaken):
            # Create keys are never released, so the key that beat ours is there; the claim
            # usually read it already (a replay in one round trip).
            holder = added.holder or await uow.keys.holder(cmd.tenant, cmd.idempotency_key)
    svc.recent_keys.add(cmd.tenant, cmd.idempotency_key)
    if isinstance(added, KeyTaken):
        assert holder is not None
        return await _replay(svc, cmd.tenant, holder, record, deadline)
    svc.recent_payments.wrote(payment)

    payment = replace(payment, last_event_sequence=added.cursor)
    # Shielded: a caller who hangs up must not leave the call half-recorded.
    task = svc.submissions.start(payment.id, submit(svc, payment,
                                                    CallContext(deadline=deadline)))
    return await asyncio.shield(task)


async def _replay_recent(svc: Services, cmd: CreatePayment,
                         deadline: float | None) -> Payment | None:
    """A replay of a key this process answered lately (RecentKeys): the key's holder, read
    first. None when the key is gone or was used with another request: the usual path then
    answers as it always does (errors included)."""
    async with svc.uow() as uow:
        holder = await uow.keys.holder(cmd.tenant, cmd.idempotency_key)
    if holder is None:
        return None
    wanted = _create_record(cmd, holder.record.resource_id)
    if not _same_request(holder.record, wanted):
        return None
    return await _replay(svc, cmd.tenant, holder, wanted, deadline)


def _create_record(cmd: CreatePayment, payment_id: str) -> IdempotencyRecord:
    return IdempotencyRecord(cmd.tenant, cmd.idempotency_key, f"create:{cmd.direction}",
                             cmd.fingerprint(), payment_id)


def _same_request(stored: IdempotencyRecord, wanted: IdempotencyRecord) -> bool:
    return (stored.operation, stored.fingerprint) == (wanted.operation, wanted.fingerprint)


async def _replay(svc: Services, tenant: str, holder: KeyHolder,
                  wanted: IdempotencyRecord, deadline: float | None) -> Payment:
    existing = holder.record
    if not _same_request(existing, wanted):
        raise IdempotencyKeyReused(
            f"idempotency key {wanted.key!r} was used with a different request")
    if holder.submitted and holder.payment is not None:
        return holder.payment  # the common replay: answered already, read in the same trip
    await _wait_submitted(svc, existing.resource_id, deadline)
    return await get_payment(svc, tenant, existing.resource_id)


async def _wait_submitted(svc: Services, payment_id: str, deadline: float | None) -> None:
    """Same answer for every duplicate: wait until the first call's answer is recorded."""
    limit = time.monotonic() + REPLAY_WAIT_S
    if deadline is not None:
        limit = min(limit, deadline - REPLAY_ANSWER_S)
    inflight = svc.submissions.waiting(payment_id)
    if inflight is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(inflight), max(0.0, limit - time.monotonic()))
        return
    delay = 0.01
    while time.monotonic() < limit:
        async with svc.uow() as uow:
            if await uow.payments.is_submitted(payment_id):
                return
        # Never sleep past the limit: the answer would land after the caller's deadline.
        await asyncio.sleep(max(0.0, min(delay, limit - time.monotonic())))
        delay = min(delay * 2, 0.2)


async def _check_daily_limit(svc: Services, payment: Payment) -> None:
    channel = svc.connectors.for_payment(payment).catalogue().channel(payment.channel)
    limits = channel.limits_for(payment.direction) if channel else None
    if not limits or not limits.daily_max_minor or not payment.customer.phone_number:
        return
    start = payment.created_at.replace(hour=0, minute=0, second=0, microsecond=0)
    async with svc.uow() as uow:
        total = await uow.payments.total_today(
            payment.tenant, payment.provider, payment.channel, payment.customer.phone_number,
            payment.direction, start)
    if total + payment.amount.minor > limits.daily_max_minor:
        raise InvalidRequest(FieldViolation(
            "amount.amount_minor", "rule daily_max: daily total for this customer would exceed "
            f"{Money(limits.daily_max_minor, payment.amount.currency)}"), reason="PROVIDER_RULE")


async def get_payment(svc: Services, tenant: str, payment_id: str,
                      direction: Direction | None = None) -> Payment:
    check_payment_id(payment_id)
    async with svc.uow() as uow:
        payment = await uow.payments.get(payment_id, tenant=tenant)
    if payment is None or (direction is not None and payment.direction is not direction):
        raise NotFound(f"{'payout' if direction is Direction.PAYOUT else 'payment'} "
                       f"{payment_id} not found")
    return payment


async def list_payments(svc: Services, query: ListQuery) -> Sequence[Payment]:
    async with svc.uow() as uow:
        return await uow.payments.list(query)


async def _claim_change(svc: Services, tenant: str, key: str, operation: str,
                        fingerprint_: str, payment_id: str) -> tuple[Payment, bool]:
    """Claim an idempotency key for a change of an existing payment; True if a replay."""
    violations = check_key(key)
    if violations:
        raise InvalidRequest(violations)
    check_payment_id(payment_id)
    async with svc.uow() as uow:
        payment = await uow.payments.get(payment_id, tenant=tenant)
        if payment is None:
            raise NotFound(f"payment {payment_id} not found")
        existing = await uow.keys.claim(IdempotencyRecord(tenant, key, operation, fingerprint_,
                                                          payment_id))
    if existing is None:
        return payment, False
    if existing.operation != operation or existing.fingerprint != fingerprint_:
        raise IdempotencyKeyReused(f"idempotency key {key!r} was used with a different request")
    return payment, True


async def _release_key(svc: Services, tenant: str, key: str) -> None:
    """An operation that changed nothing anywhere gives its key back for a retry."""
    async with svc.uow() as uow:
        await uow.keys.release(tenant, key)


async def confirm_payment(svc: Services, cmd: ConfirmPayment, deadline: float | None) -> Payment:
    payment, replay = await _claim_change(svc, cmd.tenant, cmd.idempotency_key, "confirm",
                                          cmd.fingerprint(), cmd.payment_id)
    if replay:
        return await get_payment(svc, cmd.tenant, cmd.payment_id)
    if payment.status is not Status.ACTION_REQUIRED:
        await _release_key(svc, cmd.tenant, cmd.idempotency_key)
        raise FailedPrecondition(f"payment is {payment.status}, not ACTION_REQUIRED",
                                 reason="NOT_AWAITING_CONFIRMATION")
    connector = svc.connectors.for_payment(payment)
    ctx = CallContext(deadline=deadline)
    confirmation = Confirmation(otp=cmd.otp, provider_transaction_id=cmd.provider_transaction_id)
    try:
        update = await connector.confirm(payment, confirmation, ctx)
    except ProviderOutcomeUnknown as exc:
        update = ProviderUpdate(Status.UNKNOWN, failure_reason="PROVIDER_OUTCOME_UNKNOWN",
                                failure_message=exc.message)
    except (ProviderRejectedRequest, ProviderUnavailable, Unsupported, InvalidRequest) as exc:
        await record_update(svc, payment.id, ProviderUpdate(None), actor=f"tenant:{cmd.tenant}",
                            exchanges=ctx.exchanges)
        await _release_key(svc, cmd.tenant, cmd.idempotency_key)
        if isinstance(exc, ProviderUnavailable):
            raise Unavailable(exc.message) from None
        if isinstance(exc, ProviderRejectedRequest):
            raise FailedPrecondition(f"the provider refused the confirmation: {exc.message}",
                                     reason="CONFIRMATION_REFUSED") from None
        raise
    holder = await _reference_holder(svc, payment, update.provider_reference)
    if holder:
        # A provider transaction the caller names (KKiaPay's widget id) that already backs
        # another payment: refused outright. Two racing confirms are still caught under the
        # row lock (REFERENCE_REUSED review); this answers the plain case with an error.
        await record_update(svc, payment.id, ProviderUpdate(None), actor=f"tenant:{cmd.tenant}",
                            exchanges=ctx.exchanges)
        await _release_key(svc, cmd.tenant, cmd.idempotency_key)
        raise FailedPrecondition(f"provider transaction {update.provider_reference} already "
                                 "backs another payment", reason="CONFIRMATION_REFUSED")
    change = await record_update(svc, payment.id, update, actor=f"tenant:{cmd.tenant}",
                                 exchanges=ctx.exchanges)
    return change.after


async def _reference_holder(svc: Services, payment: Payment, reference: str) -> str:
    """The id of another payment that holds `reference` at the same provider account."""
    if not reference or reference == payment.provider_reference:
        return ""
    async with svc.uow() as uow:
        other = await uow.payments.by_provider_reference(payment.provider, payment.account,
                                                         reference)
    return other.id if other is not None and other.id != payment.id else ""


async def cancel_payment(svc: Services, cmd: ChangePayment, deadline: float | None) -> Payment:
    """Refunds are app/refunds.py: resources of their own."""
    operation = "cancel"
    payment, replay = await _claim_change(svc, cmd.tenant, cmd.idempotency_key, operation,
                                          cmd.fingerprint(), cmd.payment_id)
    if replay:
        return await get_payment(svc, cmd.tenant, cmd.payment_id)
    connector = svc.connectors.for_payment(payment)
    problem = ""
    if not connector.capabilities.cancellations:
        problem = f"{payment.provider} does not support cancels"
    elif payment.status in FINAL or payment.status is Status.SUCCEEDED:
        problem = f"a {payment.status} payment cannot be cancelled"
    if problem:
        await _release_key(svc, cmd.tenant, cmd.idempotency_key)
        reason = "NOT_SUPPORTED_BY_PROVIDER" if "support" in problem else "INVALID_STATE"
        raise FailedPrecondition(problem, reason=reason)
    ctx = CallContext(deadline=deadline)
    try:
        update = await connector.cancel(payment, ctx)
    except ProviderOutcomeUnknown:
        # Money state unchanged as far as we know; the reconciler's next poll tells.
        update = ProviderUpdate(None, provider_message=f"{operation} outcome unknown")
    except (ProviderRejectedRequest, ProviderUnavailable) as exc:
        await record_update(svc, payment.id, ProviderUpdate(None), actor=f"tenant:{cmd.tenant}",
                            exchanges=ctx.exchanges)
        await _release_key(svc, cmd.tenant, cmd.idempotency_key)
        if isinstance(exc, ProviderUnavailable):
            raise Unavailable(exc.message) from None
        raise FailedPrecondition(f"the provider refused the {operation}: {exc.message}",
                                 reason=f"{operation.upper()}_REFUSED") from None
    if cmd.reason and update.status is not None:
        update = replace(update, failure_reason=update.failure_reason or operation.upper(),
                         failure_message=update.failure_message or cmd.reason)
    change = await record_update(svc, payment.id, update, actor=f"tenant:{cmd.tenant}",
                                 exchanges=ctx.exchanges)
    return change.after


async def refresh_payment(svc: Services, tenant: str, payment_id: str,
                          deadline: float | None) -> Payment:
    payment = await get_payment(svc, tenant, payment_id)
    connector = svc.connectors.for_payment(payment)
    if payment.status in FINAL:
        return payment
    if not connector.capabilities.status_polling:
        raise FailedPrecondition(f"{payment.provider} has no status lookup; its callbacks and "
                                 "the expiry rule settle payments", reason="NO_STATUS_POLLING")
    async with svc.uow() as uow:
        submitted = await uow.payments.is_submitted(payment.id)
    if payment.status is Status.PENDING and not submitted:
        return payment  # the submission is still running (or will be resumed)
    try:
        change = await poll(svc, payment, CallContext(deadline=deadline),
                            actor=f"tenant:{tenant}")
    except ProviderUnavailable as exc:
        raise Unavailable(exc.message) from None
    except ProviderNotFound:
        return payment  # not there (yet): the reconciler keeps asking on its schedule
    return change.after
