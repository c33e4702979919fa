"""The composition root: builds every real dependency once and runs its background loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from ssl import SSLContext
from typing import Any

import asyncpg
import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from pydantic import ValidationError

from malipo.api import tls
from malipo.api.auth import ApiKeys
from malipo.api.edge import Edge, guarded
from malipo.api.operators import OperatorKeys
from malipo.api.servicer import SERVICE_NAME, PaymentServicer, add_to_server
from malipo.api.webhooks import WebhookServicer
from malipo.app.directory import ConnectorDirectory
from malipo.app.inflight import RecentPayments
from malipo.app.services import Services
from malipo.app.webhooks import sync_config_endpoints
from malipo.callbacks.listener import build_app, metrics_app
from malipo.callbacks.processing import CallbackProcessor
from malipo.config import ConfigError, Settings
from malipo.connectors import registry
from malipo.metrics import BUILD_INFO, Sampler, version
from malipo.payments.v1 import (
    webhooks_pb2,
    webhooks_pb2_grpc,
)
from malipo.reconciler.loop import Reconciler
from malipo.store.callbacks import PostgresCallbackJournal
from malipo.store.embedded import start_embedded
from malipo.store.events import OUTBOX_CHANNEL
from malipo.store.failures import CONNECTION_LOST, DATABASE_ERRORS
from malipo.store.leases import PostgresPollLeases
from malipo.store.migrations import migrate
from malipo.store.refund_leases import PostgresRefundLeases
from malipo.store.retention import ExchangeRetention
from malipo.store.unit_of_work import PostgresUnitOfWorkFactory, create_pool
from malipo.store.webhooks import PostgresWebhookEndpoints
from malipo.streaming.hub import EventHub
from malipo.streaming.relay import EventExporter, EventRelay
from malipo.streaming.retention import EventRetention
from malipo.webhooks import DeliveryPolicy, WebhookDispatcher, new_secret, parse_secret

log = logging.getLogger("malipo")
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
    metrics_address: str = ""
    api_keys: ApiKeys | None = None
    _runner: web.AppRunner | None = None
    _metrics_runner: web.AppRunner | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _health: Any = None

    async def start(self) -> None:
        s = self.settings
        api_keys = self._api_keys()  # before anything starts: no keys is a config mistake
        self.pool = pool = await self._open_database()
        # With no accounts configured, the embedded development setup serves the simulator
        # to its own tenants; against a real DATABASE_URL nobody gets one unasked.
        dev_tenants = () if s.database_url else api_keys.tenants()
        self.connectors = ConnectorDirectory(
            [registry.build(a) for a in s.provider_accounts(dev_tenants)], s.poll_policies())
        relay = EventRelay(pool, exporter=_nats_exporter(s.nats_url), listen=False)
        recent = RecentPayments(max_bytes=int(s.recent_payments_mb * 1024 * 1024))
        self.services = Services(PostgresUnitOfWorkFactory(pool), self.connectors,
                                 PostgresCallbackJournal(pool), outbox=relay,
                                 recent_payments=recent)
        self.hub = EventHub(pool, heartbeat_s=s.heartbeat_s)
        self.hub.also_listen(OUTBOX_CHANNEL, relay.wake)  # the process's one LISTEN connection
        leases = PostgresPollLeases(pool)
        self.reconciler = Reconciler(self.services, leases, interval_s=s.reconcile_interval_s,
                                     refund_leases=PostgresRefundLeases(pool))
        self.callbacks = CallbackProcessor(self.services)
        endpoints = await self._webhook_endpoints(pool)
        await self._start_grpc(api_keys, endpoints)
        await self._start_http()
        BUILD_INFO.labels(version=version(), python=platform.python_version(),
                          grpc=grpc.__version__).set(1)
        self._run_loops(pool, relay, leases)
        for name in ("", SERVICE_NAME):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def _open_database(self) -> asyncpg.Pool:
        """The configured or embedded PostgreSQL, migrated, and a pool on it."""
        s = self.settings
        self.database_url = s.database_url or await asyncio.to_thread(
            start_embedded, s.data_dir / "postgres")
        conn = await asyncpg.connect(self.database_url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        return await create_pool(self.database_url, max_size=s.db_pool_max)

    async def _webhook_endpoints(self, pool: asyncpg.Pool) -> PostgresWebhookEndpoints:
        """The configured [[webhooks]] stored, and their dispatcher built (run by _run_loops)."""
        s = self.settings
        endpoints = PostgresWebhookEndpoints(pool)
        try:
            await sync_config_endpoints(endpoints, s.webhook_endpoints(), parse_secret,
                                        private_networks=s.webhook_allow_private_networks)
        except ValueError as exc:  # a typo in [[webhooks]] stops the start, in one line
            raise ConfigError(f"[[webhooks]]: {exc}") from None
        self.webhooks = WebhookDispatcher(pool, DeliveryPolicy(
            poll_s=s.webhook_poll_s, timeout_s=s.webhook_timeout_s, lease_s=s.webhook_lease_s,
            backoff_first_s=s.webhook_backoff_first_s, backoff_max_s=s.webhook_backoff_max_s,
            retry_for_s=s.webhook_retry_for_s,
            private_networks=s.webhook_allow_private_networks))
        assert self.hub is not None
        self.hub.on_new_events(self.webhooks.wake)  # new events go out without waiting a poll
        return endpoints

    async def _start_grpc(self, api_keys: ApiKeys, endpoints: PostgresWebhookEndpoints) -> None:
        s = self.settings
        assert self.services is not None
        self.edge = edge = Edge(api_keys, rate_per_s=s.rate_limit_per_s,
                                burst=s.rate_limit_burst, max_concurrent=s.max_concurrent_rpcs,
                                connection_lost=CONNECTION_LOST)
        try:
            edge.operators = OperatorKeys(s.operator_key_pairs(), api_keys)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self._server = server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", s.max_message_bytes),
            ("grpc.max_send_message_length", s.max_message_bytes),
            ("grpc.so_reuseport", 1 if s.workers > 1 else 0),
            # grpc core cancels calls waiting to be accepted beyond this (default 3,000): a
            # reconnect storm of WatchStatus streams after a restart would be refused.
            ("grpc.server.max_pending_requests_hard_limit", 50_000),
            *_connection_age(s),
        ])
        add_to_server(guarded(PaymentServicer(self.services, self.hub), edge), server)
        webhooks_pb2_grpc.add_WebhookServiceServicer_to_server(
            guarded(WebhookServicer(endpoints, new_secret,
                                    private_networks=s.webhook_allow_private_networks),
                    edge), server)
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

    async def _start_http(self) -> None:
        """The callback listener, and /metrics on its own port when metrics_listen says so."""
        s = self.settings
        assert self.connectors is not None
        assert self.callbacks is not None
        app = build_app(self.connectors, self.callbacks, max_body=s.max_callback_bytes,
                        healthy=self._db_healthy, serve_metrics=not s.metrics_listen)
        ssl = (tls.ssl_context(s.tls_cert, s.tls_key, s.http_tls_client_ca)
               if s.tls_cert and s.tls_key else None)
        self._runner, self.http_address = await _listen(app, s.http_listen, s.workers > 1, ssl)
        if s.metrics_listen:
            self._metrics_runner, self.metrics_address = await _listen(
                metrics_app(), s.metrics_listen, s.workers > 1, None)

    def _run_loops(self, pool: asyncpg.Pool, relay: EventRelay,
                   leases: PostgresPollLeases) -> None:
        s = self.settings
        assert self.hub is not None
        assert self.reconciler is not None
        assert self.webhooks is not None
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(c) for c in (
            self.hub.run(), relay.run(), self.reconciler.run(), self._watch_health(),
            self.webhooks.run(),
            ExchangeRetention(pool, keep=timedelta(days=s.exchange_retention_days),
                              keep_keys=timedelta(days=s.idempotency_key_retention_days),
                              interval_s=s.retention_interval_s).run(),
            EventRetention(pool, keep=timedelta(days=s.event_retention_days),
                           interval_s=s.retention_interval_s).run(),
            self._watch_keys_file(),
            Sampler(leases, breakers=lambda: self.reconciler.breakers if self.reconciler else {},
                    hub_stats=lambda: self.hub.stats() if self.hub else None).run())]

    def _api_keys(self) -> ApiKeys:
        """The configured keys; a development key only on the embedded database (against a
        real DATABASE_URL, no keys is a mistake, not an invitation)."""
        s = self.settings
        pairs = s.required_api_key_pairs()
        if not pairs:
            self.dev_key = "dev_" + secrets.token_urlsafe(24)
            pairs = [("dev", self.dev_key)]
        try:
            self.api_keys = ApiKeys(pairs)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return self.api_keys

    def reload_keys(self) -> bool:
        """Re-read the keys (file, TOML) without a restart; a broken set keeps the old one."""
        if self.api_keys is None or self.dev_key:
            return False
        try:
            # Read again from where they came: MALIPO_API_KEYS, the config file's [api_keys]
            # and the keys file (the keys themselves are not passed, or they would win).
            pairs = Settings.load(**self.settings.model_dump(
                include={"config", "api_keys_file"})).api_key_pairs()
            if not pairs:
                raise ConfigError("the new key set is empty")
            operators = self.edge.operators if self.edge is not None else None
            if operators is not None and any(operators.operator_for(k) for _, k in pairs):
                # The start-up rule: a tenant key must never also open operator methods.
                raise ConfigError("a new tenant key is an operator key")
            self.api_keys.replace(pairs)
        except (ValueError, ValidationError) as exc:
            log.error("API keys not reloaded, the previous ones stay in force: %s", exc)
            return False
        log.info("API keys reloaded: %d keys for %d tenants", len(self.api_keys),
                 len(self.api_keys.tenants()))
        return True

    async def _watch_keys_file(self) -> None:
        """Reload when MALIPO_API_KEYS_FILE changes (a rotated Kubernetes Secret, an edit)."""
        path = self.settings.api_keys_file
        if path is None:
            return
        seen = _mtime(path)
        while True:
            await asyncio.sleep(self.settings.api_keys_reload_s)
            now = _mtime(path)
            if now != seen:
                seen = now
                self.reload_keys()

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
        if self.services is not None:
            await self.services.submissions.drain(grace_s)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for runner in (self._runner, self._metrics_runner):
            if runner is not None:
                await runner.cleanup()
        if self.connectors is not None:
            await self.connectors.close()
        if self.pool is not None:
            await self.pool.close()

    def banner(self) -> str:
        lines = [
            f"Malipo gRPC   listening on {self.grpc_address}",
            f"Callbacks     listening on http://{self.http_address}/callbacks/<provider>/<account>",
            f"Health        http://{self.http_address}/healthz   metrics: "
            + (f"http://{self.metrics_address}/metrics" if self.metrics_address
               else "/metrics"),
            "Database      "
            + ("DATABASE_URL" if self.settings.database_url else "embedded PostgreSQL"),
            "Providers     " + (", ".join(sorted({f"{c.provider}/{c.account.name}"
                                                  for c in (self.connectors or [])}))
                                 or "none: add [[accounts]] to the MALIPO_CONFIG file"),
        ]
        if self.dev_key:
            lines.append(f"Development API key (tenant 'dev'): {self.dev_key}")
            lines.append(f"  try: MALIPO_API_KEY={self.dev_key} .venv/bin/malipo demo")
        return "\n".join(lines)


def _nats_exporter(url: str) -> EventExporter | None:
    if not url:
        return None
    # nats-py (~1.5 MB resident) is loaded only when the NATS export is configured.
    from malipo.streaming.nats_export import NatsExporter  # noqa: PLC0415

    return NatsExporter(url)


def _connection_age(s: Settings) -> list[tuple[str, int]]:
    if s.grpc_max_connection_age_s <= 0:
        return []
    return [("grpc.max_connection_age_ms", int(s.grpc_max_connection_age_s * 1000)),
            ("grpc.max_connection_age_grace_ms", int(s.grpc_max_connection_age_grace_s * 1000))]


async def _listen(app: web.Application, listen: str, reuse_port: bool,
                  ssl: SSLContext | None) -> tuple[web.AppRunner, str]:
    """Serve `app` on host:port (port 0: any); returns the runner and the bound address."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = listen.rsplit(":", 1)
    site = web.TCPSite(runner, host, int(port), reuse_port=reuse_port, ssl_context=ssl)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else int(port)
    return runner, f"{host}:{bound}"


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
