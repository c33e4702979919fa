"""Optional NATS JetStream export of the event log (off unless MALIPO_NATS_URL is set)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import nats
from nats.aio.client import Client
from nats.js.api import StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from malipo.domain.events import StatusEvent
from malipo.store.events import event_to_json

# A subject token may not hold '.', '*', '>' or whitespace; tenants and providers are ours,
# but a stray dot must not split one tenant's subject into another's.
_UNSAFE = re.compile(r"[.*>\s]")


def subject_for(event: StatusEvent, prefix: str = "malipo.events") -> str:
    return f"{prefix}.{_UNSAFE.sub('_', event.tenant)}.{_UNSAFE.sub('_', event.provider)}"


class NatsExporter:
    """Publishes each event to `malipo.events.<tenant>.<provider>`, acknowledged by JetStream.

    The sequence is the Nats-Msg-Id, so re-sending after a crash (the relay resumes from its
    stored export position) is dropped by the stream's duplicate window."""

    def __init__(self, url: str, *, stream: str = "MALIPO_EVENTS",
                 prefix: str = "malipo.events", duplicate_window_s: float = 120.0,
                 timeout_s: float = 5.0) -> None:
        self._url = url
        self._stream = stream
        self._prefix = prefix
        self._window = duplicate_window_s
        self._timeout = timeout_s
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None

    async def _jetstream(self) -> JetStreamContext:
        if self._js is not None and self._nc is not None and self._nc.is_connected:
            return self._js
        await self.close()
        nc = await nats.connect(self._url, connect_timeout=self._timeout,
                                max_reconnect_attempts=3, allow_reconnect=True)
        js = nc.jetstream(timeout=self._timeout)
        subjects = [f"{self._prefix}.>"]
        try:
            await js.stream_info(self._stream)
        except NotFoundError:
            # Zero-config default; operators who manage streams create theirs beforehand.
            await js.add_stream(StreamConfig(name=self._stream, subjects=subjects,
                                             duplicate_window=self._window))
        self._nc, self._js = nc, js
        return js

    async def publish(self, events: Sequence[StatusEvent]) -> None:
        js = await self._jetstream()
        # One at a time, each acknowledged, so the stream keeps sequence order; after a
        # failure the relay re-sends the batch and the duplicate window drops the overlap.
        for event in events:
            await js.publish(
                subject_for(event, self._prefix),
                json.dumps(event_to_json(event), separators=(",", ":")).encode(),
                stream=self._stream,
                headers={"Nats-Msg-Id": str(event.sequence)},
            )

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            await nc.close()
