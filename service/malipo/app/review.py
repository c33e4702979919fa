"""The review queue's other end: an operator settles a flagged or UNKNOWN payment, or a
refund of one.

The key claim, the guarded writes with their events and the journal entry are one
transaction, so a resolution is either wholly there (and replayable by its key) or not at all."""

from __future__ import annotations

from dataclasses import dataclass

from malipo.app.commands import ResolvePayment, ResolveRefund, check_resolve
from malipo.app.refunds import reverse_when_refunded
from malipo.app.services import Services
from malipo.app.unit_of_work import IdempotencyRecord, Schedule, UnitOfWork
from malipo.domain.errors import IdempotencyKeyReused, NotFound
from malipo.domain.ids import new_resolution_id
from malipo.domain.payments import Payment, ProviderUpdate
from malipo.domain.refunds import Refund, is_whole
from malipo.domain.resolutions import (
    RESOLVED,
    Operator,
    Resolution,
    check_refund_target,
    check_target,
    clear_refund_flag,
    resolve,
    resolved_refund,
)
from malipo.domain.review import split_review
from malipo.domain.status import Status
from malipo.redaction import mask_text

OPERATION = "resolve"
REFUND_OPERATION = "resolve_refund"


@dataclass(frozen=True, slots=True)
class Resolved:
    payment: Payment
    resolution: Resolution


@dataclass(frozen=True, slots=True)
class ResolvedRefund:
    payment: Payment
    refund: Refund
    resolution: Resolution


def operator_scope(operator: str) -> str:
    """Operators' idempotency keys live apart from every tenant's (tenant names have no ':')."""
    return f"operator:{operator}"


async def resolve_payment(svc: Services, cmd: ResolvePayment) -> Resolved:
    check_resolve(cmd)
    check_target(cmd.resolution)
    record = IdempotencyRecord(operator_scope(cmd.operator), cmd.idempotency_key, OPERATION,
                               cmd.fingerprint(), new_resolution_id())
    async with svc.uow() as uow:
        existing = await uow.keys.claim(record)
        # A refusal below (not found, not under review, not allowed) rolls the key back too.
        done = None if existing else await _apply(svc, uow, cmd, record.resource_id)
    if done is not None:
        return done
    async with svc.uow() as uow:
        resolution = await _replayed(uow, record, existing)
        payment = await uow.payments.get(cmd.payment_id, tenant=cmd.tenant)
    assert payment is not None  # written in the transaction that stored the key
    return Resolved(payment, resolution)


async def resolve_refund(svc: Services, cmd: ResolveRefund) -> ResolvedRefund:
    """ResolveRefund: the refund settled as the operator says, with what follows for its
    payment (REVERSED, its REFUND_UNSETTLED flag cleared) in the same transaction."""
    check_resolve(cmd)
    check_refund_target(cmd.resolution)
    record = IdempotencyRecord(operator_scope(cmd.operator), cmd.idempotency_key,
                               REFUND_OPERATION, cmd.fingerprint(), new_resolution_id())
    async with svc.uow() as uow:
        existing = await uow.keys.claim(record)
        done = None if existing else await _apply_refund(svc, uow, cmd, record.resource_id)
    if done is not None:
        return done
    async with svc.uow() as uow:
        resolution = await _replayed(uow, record, existing)
        refund = await uow.refunds.get(cmd.refund_id, tenant=cmd.tenant)
        payment = await uow.payments.get(resolution.payment_id, tenant=cmd.tenant)
    assert refund is not None  # written in the transaction that stored the key
    assert payment is not None
    return ResolvedRefund(payment, refund, resolution)


async def _replayed(uow: UnitOfWork, record: IdempotencyRecord,
                    existing: IdempotencyRecord | None) -> Resolution:
    """The resolution the key made before, if it was made by this same request."""
    assert existing is not None
    if existing.operation != record.operation or existing.fingerprint != record.fingerprint:
        raise IdempotencyKeyReused(
            f"idempotency key {record.key!r} was used with a different request")
    resolution = await uow.resolutions.get(existing.resource_id)
    assert resolution is not None  # journaled in the transaction that stored the key
    return resolution


def _resolution(svc: Services, cmd: ResolvePayment | ResolveRefund, resolution_id: str,
                payment_id: str, flagged: Refund | Payment, refund_id: str = "") -> Resolution:
    return Resolution(
        id=resolution_id, payment_id=payment_id, tenant=flagged.tenant,
        operator=Operator(cmd.operator, cmd.key_id), from_status=flagged.status,
        to_status=cmd.resolution,
        review_reason=split_review(flagged.review_reason)[0] if flagged.needs_review else "",
        reason=mask_text(cmd.reason), evidence=mask_text(cmd.evidence),
        idempotency_key=cmd.idempotency_key, resolved_at=svc.clock(), refund_id=refund_id)


async def _apply(svc: Services, uow: UnitOfWork, cmd: ResolvePayment,
                 resolution_id: str) -> Resolved:
    payment = await uow.payments.lock(cmd.payment_id)
    if payment is None or payment.tenant != cmd.tenant:
        raise NotFound(f"payment {cmd.payment_id} of tenant {cmd.tenant} not found")
    resolution = _resolution(svc, cmd, resolution_id, payment.id, payment)
    change = resolve(payment, resolution)
    # A resolved payment is settled: the reconciler stops asking about it.
    if not await uow.payments.write(change, actor=operator_scope(cmd.operator),
                                    schedule=Schedule(None)):
        raise RuntimeError(f"guarded update of {payment.id} lost a race under lock")
    await uow.resolutions.add(resolution)
    return Resolved(change.after, resolution)


async def _apply_refund(svc: Services, uow: UnitOfWork, cmd: ResolveRefund,
                        resolution_id: str) -> ResolvedRefund:
    missing = NotFound(f"refund {cmd.refund_id} of tenant {cmd.tenant} not found")
    seen = await uow.refunds.get(cmd.refund_id, tenant=cmd.tenant)
    if seen is None:
        raise missing
    # The payment's row lock first, as every refund writer takes it (app/refunds.py); the
    # refund is read again under it.
    payment = await uow.payments.lock(seen.payment_id)
    refund = await uow.refunds.get(cmd.refund_id, tenant=cmd.tenant)
    if payment is None or refund is None:
        raise missing
    resolution = _resolution(svc, cmd, resolution_id, payment.id, refund, refund.id)
    after = resolved_refund(refund, resolution)
    actor = operator_scope(cmd.operator)
    # Settled: the reconciler stops asking about it.
    if not await uow.refunds.write(refund, after, payment, actor=actor,
                                   provider_payload=resolution.record(),
                                   schedule=Schedule(None), reason=RESOLVED):
        raise RuntimeError(f"guarded update of {refund.id} lost a race under lock")
    unflag = clear_refund_flag(payment, resolution, await uow.refunds.for_payment(payment.id))
    if unflag is not None:
        await uow.payments.write(unflag, actor=actor)
        payment = unflag.after
    if after.status is Status.SUCCEEDED:
        # As a provider's confirmation would: REVERSED once the refunds reach the amount.
        confirmed = ProviderUpdate(Status.REVERSED, failure_reason="REFUNDED",
                                   raw=resolution.record())
        payment = await reverse_when_refunded(svc, uow, payment, confirmed,
                                              whole=is_whole(after, payment), reason="",
                                              actor=actor)
    await uow.resolutions.add(resolution)
    return ResolvedRefund(payment, after, resolution)
