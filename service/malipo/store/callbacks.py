"""The callback journal: raw deliveries first, then one row per provider event."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg


class CallbackJournal:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record_delivery(self, provider: str, account: str, received_at: datetime,
                              remote: str, headers: Mapping[str, str], body: bytes) -> int:
        journal_id: int = await self._pool.fetchval(
            "INSERT INTO callback_journal (provider, account, received_at, remote, headers, body,"
            " body_sha256) VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING id",
            provider, account, received_at, remote, dict(headers), body,
            hashlib.sha256(body).hexdigest(),
        )
        return journal_id

    async def mark_delivery(self, journal_id: int, outcome: str, detail: str = "") -> None:
        await self._pool.execute(
            "UPDATE callback_journal SET outcome = $2, detail = $3 WHERE id = $1",
            journal_id, outcome, detail[:1000])

    async def claim_event(self, provider: str, account: str, event_key: str, journal_id: int,
                          payment_id: str, reference: str, event: Mapping[str, Any]) -> bool:
        """False when this provider event was seen before (a duplicate delivery).

        An event that named a payment we did not know is claimed again: the provider's re-send
        (Paykassma's, after our non-ok answer) is how a callback that outran our own commit
        gets applied, so it must not be answered as a duplicate."""
        inserted = await self._pool.fetchval(
            "INSERT INTO callback_events (provider, account, event_key, journal_id, payment_id, "
            "provider_reference, outcome, event) VALUES ($1,$2,$3,$4,$5,$6,'RECEIVED',$7) "
            "ON CONFLICT (provider, account, event_key) DO UPDATE SET "
            "journal_id = EXCLUDED.journal_id, outcome = 'RECEIVED' "
            # A re-send may claim again an event whose payment was unknown, or whose
            # processing died half way (still RECEIVED after a while): nothing is lost.
            "WHERE callback_events.outcome = 'UNKNOWN_PAYMENT' OR (callback_events.outcome = "
            "'RECEIVED' AND callback_events.created_at < now() - interval '30 seconds') "
            "RETURNING true",
            provider, account, event_key, journal_id, payment_id, reference, dict(event))
        return bool(inserted)

    async def mark_event(self, provider: str, account: str, event_key: str, outcome: str) -> None:
        await self._pool.execute(
            "UPDATE callback_events SET outcome = $4 WHERE provider = $1 AND account = $2 "
            "AND event_key = $3", provider, account, event_key, outcome)

    async def deferred_for(self, provider: str, account: str,
                           reference: str) -> list[tuple[str, int, bytes]]:
        rows = await self._pool.fetch(
            "SELECT e.event_key, e.journal_id, j.body FROM callback_events e "
            "JOIN callback_journal j ON j.id = e.journal_id WHERE e.provider = $1 "
            "AND e.account = $2 AND e.provider_reference = $3 AND e.outcome = 'DEFERRED' "
            "ORDER BY e.journal_id", provider, account, reference)
        return [(r["event_key"], r["journal_id"], bytes(r["body"])) for r in rows]
