"""Apply a provider event (a callback's news): find its payment, confirm where the provider
wants, record it; and the callbacks that waited for a provider reference, once it is known."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import replace

from malipo.app.connector import (
    CallbackEvent,
    CallbackOutcome,
    CallContext,
    Connector,
    Exchange,
    InboundCallback,
)
from malipo.app.journal import Delivery, EventClaim, JournaledDelivery
from malipo.app.recording import decide_unlocked, flag_for_review, record, written_row
from malipo.app.services import Services
from malipo.app.unit_of_work import ClaimedBefore, Schedule, UnitOfWork, Written
from malipo.domain.errors import CallbackRejected, MalipoError, ProviderError
from malipo.domain.payments import Change, ChangeKind, Payment, ProviderUpdate
from malipo.domain.review import ReviewReason
from malipo.domain.status import Status

log = logging.getLogger("malipo.callbacks")


def event_key(event: CallbackEvent, body: bytes) -> str:
    """The event's de-duplication identity: the provider's own, else the body's digest."""
    return event.event_key or hashlib.sha256(body).hexdigest()


async def record_update(svc: Services, payment_id: str, update: ProviderUpdate, *,
                        actor: str, exchanges: Sequence[Exchange] = (),
                        submitted: bool = False, schedule: Schedule | None = None,
                        known: Payment | None = None) -> Change:
    """`record` the update, then apply the callbacks that were waiting for the provider
    reference it brought (see `Recorded.callbacks_waiting`)."""
    recorded = await record(svc, payment_id, update, actor=actor, exchanges=exchanges,
                            submitted=submitted, schedule=schedule, known=known)
    if recorded.callbacks_waiting:
        await apply_deferred(svc, recorded.change.after)
    return recorded.change


async def find_payment(svc: Services, connector: Connector,
                       event: CallbackEvent) -> Payment | None:
    """The payment of this provider account the event names, by our id or its reference."""
    async with svc.uow() as uow:
        return await _named(uow, connector, event)


async def _named(uow: UnitOfWork, connector: Connector, event: CallbackEvent) -> Payment | None:
    if event.payment_id:
        payment = await uow.payments.get(event.payment_id)
        return payment if payment is not None and _ours(connector, payment) else None
    if event.update.provider_reference:
        return await uow.payments.by_provider_reference(
            connector.provider, connector.account.name, event.update.provider_reference)
    return None


async def apply_event(svc: Services, connector: Connector, event: CallbackEvent,
                      payment: Payment | None) -> CallbackOutcome:
    """`payment`: the one the event names, as the caller read it (None: not ours)."""
    if payment is None:
        return (CallbackOutcome.DEFERRED if event.update.provider_reference and
                not event.payment_id else CallbackOutcome.UNKNOWN_PAYMENT)
    if event.direction and event.direction != payment.direction.value:
        await flag_for_review(svc, payment.id, ReviewReason.DIRECTION_MISMATCH,
                              f"callback says {event.direction}",
                              actor="callback", provider_payload=event.update.raw)
        return CallbackOutcome.MISMATCH
    update = event.update
    actor = f"callback:{connector.provider}"
    exchanges: Sequence[Exchange] = []
    if _needs_confirmation(connector, update):
        ctx = CallContext()
        subject = payment
        if not payment.provider_reference and update.provider_reference:
            # First news of the provider's transaction (a widget payment): ask about it.
            subject = replace(payment, provider_reference=update.provider_reference)
        try:
            update = await connector.fetch_status(subject, ctx)
        except ProviderError as exc:
            log.warning("confirmation poll failed for %s: %s", payment.id, exc.message)
            await schedule_poll(svc, payment)
            return CallbackOutcome.DEFERRED
        exchanges = ctx.exchanges
        actor = f"callback+status:{connector.provider}"
    try:
        change = await record_update(svc, payment.id, update, actor=actor,
                                     exchanges=exchanges, known=payment)
    except MalipoError as exc:
        log.warning("callback for %s not applied: %s", payment.id, exc.message)
        return CallbackOutcome.INVALID
    return _outcome(change)


async def apply_journaled(svc: Services, connector: Connector, event: CallbackEvent,
                          delivery: Delivery, claim: EventClaim) -> CallbackOutcome | None:
    """The usual callback (a status for a payment we know, nothing to confirm) in one
    commit: read the payment, decide, then journal the delivery, claim its event and write
    the change, all with the outcome decided. None: nothing was written (not the usual case,
    a duplicate, or the row moved since the read); the caller journals first and applies.

    A payment this process wrote lately (RecentPayments) is decided on that copy, with no
    read: the write is guarded by the copy's version, so a copy that is no longer the row
    writes nothing, and the row is read as usual."""
    update = event.update
    if _needs_confirmation(connector, update) or update.status is Status.REVERSED:
        return None
    copy = svc.recent_payments.get(event.payment_id) if event.payment_id else None
    if copy is not None and _ours(connector, copy):
        async with svc.uow() as uow:
            applied = await _write_journaled(svc, uow, connector, event, copy, delivery, claim)
        if isinstance(applied, CallbackOutcome):
            return applied
        if isinstance(applied, ClaimedBefore):
            return None  # a re-send: the caller journals it as one; the copy may be right
        svc.recent_payments.forget(copy.id)
    async with svc.uow() as uow:  # one connection for the read and the write
        payment = await _named(uow, connector, event)
        if payment is None:
            return None
        applied = await _write_journaled(svc, uow, connector, event, payment, delivery, claim)
    return applied if isinstance(applied, CallbackOutcome) else None


async def _write_journaled(svc: Services, uow: UnitOfWork, connector: Connector,
                           event: CallbackEvent, payment: Payment, delivery: Delivery,
                           claim: EventClaim) -> CallbackOutcome | ClaimedBefore | None:
    """apply_journaled's decision and its one statement, on `payment` as last known."""
    if event.direction and event.direction != payment.direction.value:
        return None
    try:
        decided = decide_unlocked(svc, payment, event.update)
    except MalipoError:
        return None  # the caller's path journals it and answers INVALID
    if decided is None:
        return None
    outcome = _outcome(decided.change)
    written = await uow.payments.write_if_unchanged(
        decided.write, actor=f"callback:{connector.provider}", schedule=decided.plan,
        new_reference=decided.new_reference,
        journaled=JournaledDelivery(delivery, claim, outcome.value))
    if not isinstance(written, Written):
        return written
    svc.recent_payments.wrote(written_row(decided.write))
    if written.callbacks_waiting:
        await apply_deferred(svc, decided.change.after)
    return outcome


def _ours(connector: Connector, payment: Payment) -> bool:
    """The payment was made through this provider account (a callback names only those)."""
    return (payment.provider, payment.account) == (connector.provider, connector.account.name)


def _needs_confirmation(connector: Connector, update: ProviderUpdate) -> bool:
    """The callback is a trigger (or could not name a status on its own, as Kwik's before
    its status names are known): the provider's status answer is the truth."""
    caps = connector.capabilities
    return caps.callbacks_need_confirmation or (update.status is None and caps.status_polling)


def _outcome(change: Change) -> CallbackOutcome:
    if change.kind is ChangeKind.REVIEW:
        return CallbackOutcome.MISMATCH
    if change.kind is ChangeKind.IGNORED:
        return CallbackOutcome.IGNORED
    return CallbackOutcome.APPLIED


async def poll_instead(svc: Services, connector: Connector, callback: InboundCallback) -> None:
    """A forged or broken callback that names a payment we know triggers a status poll."""
    try:
        events = connector.parse_callback(callback)
    except (CallbackRejected, MalipoError):
        return
    for event in events:
        payment = await find_payment(svc, connector, event)
        if payment is not None:
            await schedule_poll(svc, payment)


async def schedule_poll(svc: Services, payment: Payment) -> None:
    async with svc.uow() as uow:
        await uow.payments.schedule(payment.id, Schedule(svc.clock()))


async def apply_deferred(svc: Services, payment: Payment) -> None:
    """Callbacks that came before we knew the provider reference are applied now."""
    connector = svc.connectors.get(payment.provider, payment.account)
    if connector is None:
        return
    waiting = await svc.journal.deferred_for(payment.provider, payment.account,
                                             payment.provider_reference)
    for deferred in waiting:
        callback = InboundCallback(payment.provider, payment.account, {}, deferred.body, {},
                                   "", payment.updated_at)
        try:
            events = connector.parse_callback(callback)
        except CallbackRejected:
            continue
        for event in events:
            if event_key(event, deferred.body) == deferred.key:
                outcome = await apply_event(svc, connector, event,
                                            await find_payment(svc, connector, event))
                await svc.journal.mark_event(payment.provider, payment.account, deferred.key,
                                             outcome.value)
