"""Transaction status lookup ids (loo_...) -> status names ("Paid", "Unpaid", ...).

Kwik transactions carry `transaction_status_lookups_id`, not a name. Kwik's public docs
(not the seed .txt) list lookups with GET /lookups/{type}; the type for this field is
`transaction_status` (the parameter name minus `_lookups_id`), setting status_lookups_path.
Names can also be pinned by the `status_lookups` setting (a JSON object id -> name) for
accounts that know them. The table is fetched once and again only when an unknown id shows
up, at most every `refresh_s`, so a flood of unknown ids cannot become a flood of calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from malipo.app.connector import CallContext
from malipo.connectors.kwik.client import KwikClient


class StatusNames:
    def __init__(self, client: KwikClient, *, pinned: Mapping[str, str],
                 refresh_s: float = 60.0) -> None:
        self._client = client
        self._names: dict[str, str] = dict(pinned)
        self._pinned = dict(pinned)
        self._refresh_s = refresh_s
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    @property
    def loaded(self) -> bool:
        return self._fetched_at is not None

    def name(self, lookup_id: str) -> str | None:
        """Known name, or None (parse_callback is synchronous and cannot ask Kwik: the
        callback processor then confirms the event with fetch_status, which can)."""
        return self._names.get(lookup_id)

    def id_of(self, name: str) -> str | None:
        wanted = " ".join(name.lower().split())
        return next((i for i, n in self._names.items()
                     if " ".join(n.lower().split()) == wanted), None)

    async def resolve(self, lookup_id: str, ctx: CallContext) -> str | None:
        if lookup_id in self._names or not lookup_id:
            return self._names.get(lookup_id)
        await self.refresh(ctx)
        return self._names.get(lookup_id)

    async def refresh(self, ctx: CallContext, *, force: bool = False) -> None:
        async with self._lock:
            now = time.monotonic()
            if not force and self._fetched_at is not None and (
                now - self._fetched_at < self._refresh_s
            ):
                return
            body = await self._client.lookups(ctx)
            self._fetched_at = now
            self._names = {**_read(body), **self._pinned}


def _read(body: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    rows = body.get("lookups")
    if not isinstance(rows, list):
        return out
    for row in rows:  # type: ignore[misc]
        if isinstance(row, Mapping) and row.get("id") and row.get("title"):  # type: ignore[misc]
            out[str(row["id"])] = str(row["title"])  # type: ignore[index]
    return out
