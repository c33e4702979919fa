"""Every Prometheus metric Malipo exports, served by the callback listener's GET /metrics.

Counters and histograms are updated where things happen (the gRPC edge in api/edge.py,
ProviderHttp, the callback listener); gauges that describe state (reconciler backlog,
circuit breakers, stream subscribers) are sampled by `Sampler`.
This module imports neither grpc nor asyncpg so that connectors may use it.
With `--workers N` each process has its own registry: scrape pods, not a shared port.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from importlib import metadata
from typing import Any, Protocol

from prometheus_client import Counter, Gauge, Histogram

from malipo.app.leases import Backlog

log = logging.getLogger("malipo.metrics")

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

RPCS = Counter("malipo_rpc_total", "gRPC calls handled, by method and status code",
               ["method", "code"])
RPC_LATENCY = Histogram("malipo_rpc_duration_seconds", "gRPC call latency by method and code",
                        ["method", "code"], buckets=_LATENCY)
PROVIDER_LATENCY = Histogram("malipo_provider_call_duration_seconds",
                             "HTTP calls to providers, by provider and operation",
                             ["provider", "operation"], buckets=_LATENCY)
PROVIDER_ERRORS = Counter("malipo_provider_call_errors_total",
                          "Provider calls that failed: transport error, timeout, 429 or 5xx",
                          ["provider", "operation", "kind"])
CALLBACKS = Counter("malipo_callbacks_total", "Callback deliveries by provider and outcome",
                    ["provider", "outcome"])
BACKLOG = Gauge("malipo_reconciler_backlog", "Unsettled payments the reconciler tracks: "
                "due now, or scheduled for later", ["state"])
OLDEST_DUE = Gauge("malipo_reconciler_oldest_due_seconds",
                   "How long the most overdue payment has waited for its poll")
OLDEST_UNSETTLED = Gauge("malipo_unsettled_oldest_age_seconds",
                         "Age of the oldest payment not yet in a final status")
BREAKER = Gauge("malipo_circuit_breaker_state",
                "Reconciler circuit breaker per provider account: 0 closed, 1 half open, 2 open",
                ["provider", "account"])
SUBSCRIBERS = Gauge("malipo_stream_subscribers", "WatchStatus streams open on this process",
                    ["mode"])
STREAM_LAG = Gauge("malipo_stream_event_lag", "Committed events not yet dispatched to streams")
WEBHOOK_POSTS = Counter("malipo_webhook_posts_total", "Outbound webhook POSTs by outcome: "
                        "delivered (2xx), refused (any other status), unanswered (timeout, "
                        "connection error), blocked (an internal address, not connected to)",
                        ["outcome"])

BUILD_INFO = Gauge("malipo_build_info", "1, labelled with the running Malipo version and the "
                   "Python and grpcio it runs on", ["version", "python", "grpc"])

WORKER = Gauge("malipo_worker_info", "1 for this process; `worker` is its index under "
               "`serve --workers N` (scrapes of a shared port reach any worker)", ["worker"])

BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


def version() -> str:
    """The installed malipo distribution's version (also `malipo --version`)."""
    try:
        return metadata.version("malipo")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


def observe_provider_call(provider: str, operation: str, seconds: float, error: str) -> None:
    PROVIDER_LATENCY.labels(provider, operation).observe(seconds)
    if error:
        PROVIDER_ERRORS.labels(provider, operation, error).inc()


class BacklogSource(Protocol):
    async def backlog(self) -> Backlog: ...


class HasState(Protocol):
    @property
    def state(self) -> str: ...


class Sampler:
    """Refreshes the state gauges every `interval_s` from the database and in-process
    objects."""

    def __init__(self, db: BacklogSource, *,
                 breakers: Callable[[], Mapping[tuple[str, str], HasState]],
                 hub_stats: Callable[[], Any], interval_s: float = 5.0) -> None:
        self._db, self._breakers, self._hub_stats = db, breakers, hub_stats
        self.interval_s = interval_s

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            with suppress(Exception):
                await self.sample()
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    async def sample(self) -> None:
        self._sample_memory()
        backlog = await self._db.backlog()
        BACKLOG.labels("due").set(backlog.due)
        BACKLOG.labels("later").set(backlog.later)
        OLDEST_DUE.set(backlog.oldest_due_s)
        OLDEST_UNSETTLED.set(backlog.oldest_unsettled_s)

    def _sample_memory(self) -> None:
        for (provider, account), breaker in _items(self._breakers()):
            BREAKER.labels(provider, account).set(BREAKER_STATES.get(breaker.state, 2))
        stats = self._hub_stats()
        if stats is not None:
            SUBSCRIBERS.labels("live").set(stats.live)
            SUBSCRIBERS.labels("catching_up").set(stats.catching_up)
            STREAM_LAG.set(stats.lag)


def _items(breakers: Mapping[tuple[str, str], HasState]) -> Iterable[tuple[tuple[str, str],
                                                                            HasState]]:
    return list(breakers.items())  # a copy: the reconciler may add one while we read
