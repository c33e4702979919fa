"""One callback delivery: journal, verify, parse, check, apply; answer as the provider wants."""

from __future__ import annotations

from malipo.app.connector import CallbackEvent, CallbackOutcome, Connector, InboundCallback
from malipo.app.journal import Delivery, EventClaim
from malipo.app.provider_events import (
    apply_event,
    apply_journaled,
    event_key,
    find_payment,
    poll_instead,
)
from malipo.app.services import Services
from malipo.domain.errors import CallbackRejected
from malipo.redaction import mask_headers

# Worst first: the answer to a delivery reflects its most important outcome.
_RANK = [CallbackOutcome.REJECTED, CallbackOutcome.INVALID, CallbackOutcome.MISMATCH,
         CallbackOutcome.UNKNOWN_PAYMENT, CallbackOutcome.DEFERRED, CallbackOutcome.APPLIED,
         CallbackOutcome.IGNORED, CallbackOutcome.DUPLICATE]


class CallbackProcessor:
    def __init__(self, services: Services) -> None:
        self._svc = services
        self._journal = services.journal

    async def handle(self, connector: Connector, callback: InboundCallback) -> CallbackOutcome:
        """Verify and parse (no I/O), then journal the delivery (claiming its event in the
        same statement when it carries one), apply, and record the outcome. The usual
        delivery does all of that in one commit (`apply_journaled`). No delivery is answered
        before it is journaled: when the database fails first, the listener answers 503 and
        the provider sends it again."""
        delivery = Delivery(callback.provider, callback.account, callback.received_at,
                            callback.remote, mask_headers(callback.headers), callback.body)
        try:
            connector.verify_callback(callback)
        except CallbackRejected as exc:
            await self._journal.record(delivery, outcome=CallbackOutcome.REJECTED.value,
                                       detail=exc.message)
            await poll_instead(self._svc, connector, callback)
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
            applied = await apply_journaled(self._svc, connector, event, delivery, claim)
            if applied is not None:
                return applied
            claimed = await self._journal.record_claiming(delivery, claim)
            if not claimed.fresh:
                await self._journal.mark_delivery(claimed.journal_id,
                                                  CallbackOutcome.DUPLICATE.value)
                return CallbackOutcome.DUPLICATE
            outcome = await apply_event(self._svc, connector, event, claimed.payment)
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
            event_key(event, callback.body), event.payment_id,
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
        outcome = await apply_event(self._svc, connector, event,
                                    await find_payment(self._svc, connector, event))
        await self._journal.mark_event(callback.provider, callback.account, claim.key,
                                       outcome.value)
        return outcome
