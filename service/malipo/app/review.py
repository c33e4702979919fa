"""The review queue's other end: an operator settles a flagged or UNKNOWN payment.

The key claim, the guarded write with its event and the journal entry are one transaction,
so a resolution is either wholly there (and replayable by its key) or not at all."""

from __future__ import annotations

from dataclasses import dataclass

from malipo.app.commands import ResolvePayment, check_resolve
from malipo.app.services import Services
from malipo.app.unit_of_work import IdempotencyRecord, Schedule, UnitOfWork
from malipo.domain.errors import IdempotencyKeyReused, NotFound
from malipo.domain.ids import new_resolution_id
from malipo.domain.payments import Payment
from malipo.domain.resolutions import Operator, Resolution, check_target, resolve
from malipo.domain.review import split_review
from malipo.redaction import mask_text

OPERATION = "resolve"


@dataclass(frozen=True, slots=True)
class Resolved:
    payment: Payment
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
    assert existing is not None
    if existing.operation != OPERATION or existing.fingerprint != record.fingerprint:
        raise IdempotencyKeyReused(
            f"idempotency key {cmd.idempotency_key!r} was used with a different request")
    async with svc.uow() as uow:
        resolution = await uow.resolutions.get(existing.resource_id)
        payment = await uow.payments.get(cmd.payment_id, tenant=cmd.tenant)
    # Both were written in the transaction that stored the key.
    assert resolution is not None
    assert payment is not None
    return Resolved(payment, resolution)


async def _apply(svc: Services, uow: UnitOfWork, cmd: ResolvePayment,
                 resolution_id: str) -> Resolved:
    payment = await uow.payments.lock(cmd.payment_id)
    if payment is None or payment.tenant != cmd.tenant:
        raise NotFound(f"payment {cmd.payment_id} of tenant {cmd.tenant} not found")
    resolution = Resolution(
        id=resolution_id, payment_id=payment.id, tenant=payment.tenant,
        operator=Operator(cmd.operator, cmd.key_id), from_status=payment.status,
        to_status=cmd.resolution,
        review_reason=split_review(payment.review_reason)[0] if payment.needs_review else "",
        reason=mask_text(cmd.reason), evidence=mask_text(cmd.evidence),
        idempotency_key=cmd.idempotency_key, resolved_at=svc.clock())
    change = resolve(payment, resolution)
    # A resolved payment is settled: the reconciler stops asking about it.
    if not await uow.payments.write(change, actor=operator_scope(cmd.operator),
                                    schedule=Schedule(None)):
        raise RuntimeError(f"guarded update of {payment.id} lost a race under lock")
    await uow.resolutions.add(resolution)
    return Resolved(change.after, resolution)
