"""The composition root: builds every real dependency once and runs them under one TaskGroup."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from malipo.api import tls
from malipo.api.auth import ApiKeys
from malipo.api.edge import Edge, guarded
from malipo.api.servicer import PaymentServicer
from malipo.api.webhooks import WebhookServicer
from malipo.app.directory import ConnectorDirectory
from malipo.app.services import Services
from malipo.app.webhooks import sync_config_endpoints
from malipo.callbacks.listener import build_app
from malipo.callbacks.processing import CallbackProcessor
from malipo.config import Settings
from malipo.connectors import registry
from malipo.metrics import Sampler
from malipo.payments.v1 import (
    payment_service_pb2,
    payment_service_pb2_grpc,
    webhooks_pb2,
    webhooks_pb2_grpc,
)
from malipo.reconciler.loop import Reconciler
from malipo.store.callbacks import CallbackJournal
from malipo.store.embedded import start_embedded
from malipo.store.failures import DATABASE_ERRORS
from malipo.store.migrations import migrate
from malipo.store.retention import ExchangeRetention
from malipo.store.unit_of_work import PostgresUnitOfWorkFactory, create_pool
from malipo.store.webhooks import PostgresWebhookEndpoints
from malipo.streaming.hub import EventHub
from malipo.streaming.nats_export import NatsExporter
from malipo.streaming.relay import EventRelay
from malipo.streaming.retention import EventRetention
from malipo.webhooks import DeliveryPolicy, WebhookDispatcher, new_secret, parse_secret

log = logging.getLogger("malipo")
SERVICE_NAME = payment_service_pb2.DESCRIPTOR.services_by_name["PaymentService"].full_name
WEBHOOK_SERVICE_NAME = webhooks_pb2.DESCRIPTOR.services_by_name["WebhookService"].full_name


@dataclass
class App:
    settings: Settings
    dev_key: str = ""
    database_url: str = ""
    grpc_address: str = ""
    http_address: str = ""
    services: Services | None = None
    connectors: ConnectorDirectory | None = None
    pool: asyncpg.Pool | None = None
    hub: EventHub | None = None
    reconciler: Reconciler | None = None
    callbacks: CallbackProcessor | None = None
    edge: Edge | None = None
    webhooks: WebhookDispatcher | None = None
    _server: grpc.aio.Server | None = None
    _runner: web.AppRunner | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _health: Any = None

    async def start(self) -> None:
        s = self.settings
        self.database_url = s.database_url or await asyncio.to_thread(
            start_embedded, s.data_dir / "postgres")
        conn = await asyncpg.connect(self.database_url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        self.pool = pool = await create_pool(self.database_url, max_size=s.db_pool_max)
        self.connectors = ConnectorDirectory(
            [registry.build(a) for a in s.provider_accounts()], s.poll_policies())
        relay = EventRelay(pool, exporter=NatsExporter.from_url(s.nats_url))
        self.services = Services(PostgresUnitOfWorkFactory(pool, on_events=relay.nudge),
                                 self.connectors)
        keys = s.tenant_keys()
        if not keys:
            self.dev_key = "dev_" + secrets.token_urlsafe(24)
            keys = {"dev": self.dev_key}
        self.hub = EventHub(pool, heartbeat_s=s.heartbeat_s)
        self.reconciler = Reconciler(self.services, pool, interval_s=s.reconcile_interval_s)
        self.callbacks = processor = CallbackProcessor(self.services, CallbackJournal(pool))
        endpoints = PostgresWebhookEndpoints(pool)
        await sync_config_endpoints(endpoints, s.webhook_endpoints(), parse_secret)
        self.webhooks = WebhookDispatcher(pool, DeliveryPolicy(
            poll_s=s.webhook_poll_s, timeout_s=s.webhook_timeout_s, lease_s=s.webhook_lease_s,
            backoff_first_s=s.webhook_backoff_first_s, backoff_max_s=s.webhook_backoff_max_s,
            retry_for_s=s.webhook_retry_for_s))

        api_keys = ApiKeys(keys)
        self.edge = edge = Edge(api_keys, rate_per_s=s.rate_limit_per_s,
                                burst=s.rate_limit_burst, max_concurrent=s.max_concurrent_rpcs)
        self._server = server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", s.max_message_bytes),
            ("grpc.max_send_message_length", s.max_message_bytes),
            ("grpc.so_reuseport", 1 if s.workers > 1 else 0),
            # grpc core cancels calls waiting to be accepted beyond this (default 3,000): a
            # reconnect storm of WatchStatus streams after a restart would be refused.
            ("grpc.server.max_pending_requests_hard_limit", 50_000),
        ])
        payment_service_pb2_grpc.add_PaymentServiceServicer_to_server(
            guarded(PaymentServicer(self.services, self.hub), edge), server)
        webhooks_pb2_grpc.add_WebhookServiceServicer_to_server(
            guarded(WebhookServicer(endpoints, new_secret), edge), server)
        self._health = health.aio.HealthServicer()  # pyright: ignore[reportAttributeAccessIssue]
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        await self._health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)
        reflection.enable_server_reflection(
            (SERVICE_NAME, WEBHOOK_SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME),
            server)
        if s.tls_cert and s.tls_key:
            port = server.add_secure_port(s.grpc_listen, tls.server_credentials(
                s.tls_cert, s.tls_key, s.tls_client_ca))
        else:
            port = server.add_insecure_port(s.grpc_listen)
        host = s.grpc_listen.rsplit(":", 1)[0]
        self.grpc_address = f"{host}:{port}"
        await server.start()

        app = build_app(self.connectors, processor, max_body=s.max_callback_bytes,
                        healthy=self._db_healthy)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        http_host, http_port = s.http_listen.rsplit(":", 1)
        site = web.TCPSite(self._runner, http_host, int(http_port), reuse_port=s.workers > 1,
                           ssl_context=tls.ssl_context(s.tls_cert, s.tls_key, s.http_tls_client_ca)
                           if s.tls_cert and s.tls_key else None)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else int(http_port)
        self.http_address = f"{http_host}:{bound}"

        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(c) for c in (
            self.hub.run(), relay.run(), self.reconciler.run(), self._watch_health(),
            self.webhooks.run(),
            ExchangeRetention(pool, keep=timedelta(days=s.exchange_retention_days),
                              interval_s=s.retention_interval_s).run(),
            EventRetention(pool, keep=timedelta(days=s.event_retention_days),
                           interval_s=s.retention_interval_s).run(),
            Sampler(pool, breakers=lambda: self.reconciler.breakers if self.reconciler else {},
                    hub_stats=lambda: self.hub.stats() if self.hub else None).run())]
        for name in ("", SERVICE_NAME):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def _watch_health(self, interval_s: float = 5.0) -> None:
        """Readiness (SERVICE_NAME) follows the database; liveness ("") stays SERVING, so an
        outage takes pods out of rotation without restarting them."""
        while True:
            await asyncio.sleep(interval_s)
            ok = await self._db_healthy()
            await self._health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING if ok
                                   else health_pb2.HealthCheckResponse.NOT_SERVING)

    async def _db_healthy(self) -> bool:
        if self.pool is None:
            return False
        try:
            return await self.pool.fetchval("SELECT true", timeout=2) is True
        except DATABASE_ERRORS:
            return False

    async def stop(self, grace_s: float = 5.0) -> None:
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        if self.hub is not None:
            await self.hub.close()
        if self._server is not None:
            await self._server.stop(grace_s)
        if self.services is not None and self.services.tasks:
            await asyncio.wait(list(self.services.tasks), timeout=grace_s)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._runner is not None:
            await self._runner.cleanup()
        if self.connectors is not None:
            await self.connectors.close()
        if self.pool is not None:
            await self.pool.close()

    def banner(self) -> str:
        lines = [
            f"Malipo gRPC   listening on {self.grpc_address}",
            f"Callbacks     listening on http://{self.http_address}/callbacks/<provider>/<account>",
            f"Health        http://{self.http_address}/healthz   metrics: /metrics",
            "Database      "
            + ("DATABASE_URL" if self.settings.database_url else "embedded PostgreSQL"),
            "Providers     " + ", ".join(sorted({f"{c.provider}/{c.account.name}"
                                                 for c in (self.connectors or [])})),
        ]
        if self.dev_key:
            lines.append(f"Development API key (tenant 'dev'): {self.dev_key}")
            lines.append(f"  try: MALIPO_API_KEY={self.dev_key} .venv/bin/malipo demo")
        return "\n".join(lines)
