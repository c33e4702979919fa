"""One callback delivery: journal, verify, parse, check, apply; answer as the provider wants."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace

from malipo.app.connector import (
    CallbackEvent,
    CallbackOutcome,
    CallContext,
    Connector,
    InboundCallback,
)
from malipo.app.lifecycle import flag_for_review, record_update
from malipo.app.services import Services
from malipo.app.unit_of_work import Schedule
from malipo.domain.errors import CallbackRejected, MalipoError, ProviderError
from malipo.domain.payments import ChangeKind, Payment
from malipo.domain.review import ReviewReason, review_text
from malipo.redaction import mask_headers
from malipo.store.callbacks import CallbackJournal, Delivery, EventClaim

log = logging.getLogger("malipo.callbacks")

# Worst first: the answer to a delivery reflects its most important outcome.
_RANK = [CallbackOutcome.REJECTED, CallbackOutcome.INVALID, CallbackOutcome.MISMATCH,
         CallbackOutcome.UNKNOWN_PAYMENT, CallbackOutcome.DEFERRED, CallbackOutcome.APPLIED,
         CallbackOutcome.IGNORED, CallbackOutcome.DUPLICATE]


class CallbackProcessor:
    def __init__(self, services: Services, journal: CallbackJournal) -> None:
        self._svc = services
        self._journal = journal
        services.reference_hooks.append(self.apply_deferred)

    async def handle(self, connector: Connector, callback: InboundCallback) -> CallbackOutcome:
        """Verify and parse (no I/O), then journal the delivery (claiming its event in the
        same statement when it carries one), apply, and record the outcome. Whatever happens,
        the delivery is journaled before the listener answers."""
        delivery = Delivery(callback.provider, callback.account, callback.received_at,
                            callback.remote, mask_headers(callback.headers), callback.body)
        try:
            connector.verify_callback(callback)
        except CallbackRejected as exc:
            await self._journal.record(delivery, outcome=CallbackOutcome.REJECTED.value,
                                       detail=exc.message)
            await self._poll_instead(connector, callback)
            return CallbackOutcome.REJECTED
        except Exception:
            await self._journal.record(delivery, outcome="ERROR", detail="verification failed")
            raise
        try:
            events = connector.parse_callback(callback)
        except CallbackRejected as exc:
            await self._journal.record(delivery, outcome=CallbackOutcome.INVALID.value,
                                       detail=exc.message)
            return CallbackOutcome.INVALID
        except Exception:
            await self._journal.record(delivery, outcome="ERROR", detail="parsing failed")
            raise
        if len(events) == 1:
            event = events[0]
            claim = self._claim(callback, event)
            claimed = await self._journal.record_claiming(delivery, claim)
            if not claimed.fresh:
                await self._journal.mark_delivery(claimed.journal_id,
                                                  CallbackOutcome.DUPLICATE.value)
                return CallbackOutcome.DUPLICATE
            outcome = await self._apply(connector, event, claimed.payment)
            await self._journal.mark_delivery(
                claimed.journal_id, outcome.value,
                event=(callback.provider, callback.account, claim.key))
            return outcome
        journal_id = await self._journal.record(delivery)
        outcomes = [await self._one(connector, callback, journal_id, e) for e in events]
        outcome = min(outcomes, key=_RANK.index) if outcomes else CallbackOutcome.IGNORED
        await self._journal.mark_delivery(journal_id, outcome.value)
        return outcome

    @staticmethod
    def _claim(callback: InboundCallback, event: CallbackEvent) -> EventClaim:
        return EventClaim(
            event.event_key or hashlib.sha256(callback.body).hexdigest(), event.payment_id,
            event.update.provider_reference,
            {"status": str(event.update.status or ""), "raw_status": event.update.provider_status})

    async def _one(self, connector: Connector, callback: InboundCallback, journal_id: int,
                   event: CallbackEvent) -> CallbackOutcome:
        claim = self._claim(callback, event)
        fresh = await self._journal.claim_event(
            callback.provider, callback.account, claim.key, journal_id, claim.payment_id,
            claim.reference, claim.event)
        if not fresh:
            return CallbackOutcome.DUPLICATE
        outcome = await self._apply(connector, event, await self._find(connector, event))
        await self._journal.mark_event(callback.provider, callback.account, claim.key,
                                       outcome.value)
        return outcome

    async def _find(self, connector: Connector, event: CallbackEvent) -> Payment | None:
        async with self._svc.uow() as uow:
            if event.payment_id:
                payment = await uow.payments.get(event.payment_id)
                if payment is not None and (payment.provider, payment.account) == (
                        connector.provider, connector.account.name):
                    return payment
                return None
            if event.update.provider_reference:
                return await uow.payments.by_provider_reference(
                    connector.provider, connector.account.name, event.update.provider_reference)
        return None

    async def _apply(self, connector: Connector, event: CallbackEvent,
                     payment: Payment | None) -> CallbackOutcome:
        """`payment`: the one the event names, as the caller read it (None: not ours)."""
        if payment is None:
            return (CallbackOutcome.DEFERRED if event.update.provider_reference and
                    not event.payment_id else CallbackOutcome.UNKNOWN_PAYMENT)
        if event.direction and event.direction != payment.direction.value:
            await flag_for_review(self._svc, payment.id,
                                  review_text(ReviewReason.DIRECTION_MISMATCH,
                                              f"callback says {event.direction}"),
                                  actor="callback", provider_payload=event.update.raw)
            return CallbackOutcome.MISMATCH
        update = event.update
        actor = f"callback:{connector.provider}"
        exchanges = []
        caps = connector.capabilities
        if caps.callbacks_need_confirmation or (update.status is None and caps.status_polling):
            # The callback is a trigger (or could not name a status on its own, as Kwik's
            # before its status names are known): the provider's status answer is the truth.
            ctx = CallContext()
            subject = payment
            if not payment.provider_reference and update.provider_reference:
                # First news of the provider's transaction (a widget payment): ask about it.
                subject = replace(payment, provider_reference=update.provider_reference)
            try:
                update = await connector.fetch_status(subject, ctx)
            except ProviderError as exc:
                log.warning("confirmation poll failed for %s: %s", payment.id, exc.message)
                await self._schedule_poll(payment)
                return CallbackOutcome.DEFERRED
            exchanges = ctx.exchanges
            actor = f"callback+status:{connector.provider}"
        try:
            change = await record_update(self._svc, payment.id, update, actor=actor,
                                         exchanges=exchanges, known=payment)
        except MalipoError as exc:
            log.warning("callback for %s not applied: %s", payment.id, exc.message)
            return CallbackOutcome.INVALID
        if change.kind is ChangeKind.REVIEW:
            return CallbackOutcome.MISMATCH
        if change.kind is ChangeKind.IGNORED:
            return CallbackOutcome.IGNORED
        return CallbackOutcome.APPLIED

    async def _poll_instead(self, connector: Connector, callback: InboundCallback) -> None:
        """A forged or broken callback that names a payment we know triggers a status poll."""
        try:
            events = connector.parse_callback(callback)
        except (CallbackRejected, MalipoError):
            return
        for event in events:
            payment = await self._find(connector, event)
            if payment is not None:
                await self._schedule_poll(payment)

    async def _schedule_poll(self, payment: Payment) -> None:
        async with self._svc.uow() as uow:
            await uow.payments.schedule(payment.id, Schedule(self._svc.clock()))

    async def apply_deferred(self, payment: Payment) -> None:
        """Callbacks that came before we knew the provider reference are applied now."""
        connector = self._svc.connectors.get(payment.provider, payment.account)
        if connector is None:
            return
        waiting = await self._journal.deferred_for(payment.provider, payment.account,
                                                   payment.provider_reference)
        for key, _journal_id, body in waiting:
            callback = InboundCallback(payment.provider, payment.account, {}, body, {}, "",
                                       payment.updated_at)
            try:
                events = connector.parse_callback(callback)
            except CallbackRejected:
                continue
            for event in events:
                if (event.event_key or hashlib.sha256(body).hexdigest()) == key:
                    outcome = await self._apply(connector, event,
                                                await self._find(connector, event))
                    await self._journal.mark_event(payment.provider, payment.account, key,
                                                   outcome.value)
