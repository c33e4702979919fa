"""Checks a configuration before anything starts: one clear line per mistake, not a traceback
from deep inside start-up (a port that cannot be bound is found before PostgreSQL starts)."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from malipo import tracing
from malipo.app.connector import ProviderAccount
from malipo.config import ConfigError, Settings
from malipo.connectors import registry
from malipo.domain.errors import MalipoError
from malipo.redaction import MASK, mask_mapping

_DSN_SCHEMES = ("postgres", "postgresql")


def check(settings: Settings, *, bind: bool = True) -> None:
    """Raise ConfigError for the first mistake found. `bind` also tries each listener."""
    check_database_url(settings.database_url)
    listeners = [("--grpc-listen / MALIPO_GRPC_LISTEN", settings.grpc_listen),
                 ("--http-listen / MALIPO_HTTP_LISTEN", settings.http_listen)]
    if settings.metrics_listen:
        listeners.append(("MALIPO_METRICS_LISTEN", settings.metrics_listen))
    for what, listen in listeners:
        host, port = parse_listen(listen, what)
        if bind and settings.workers <= 1:
            _try_bind(host, port, what, listen)
    known = set(registry.known_providers())
    for account in settings.accounts:
        if account.provider not in known:
            raise ConfigError(f"account {account.name!r}: unknown provider "
                              f"{account.provider!r} (known: {', '.join(sorted(known))})")
    for provider_account in settings.provider_accounts():
        _check_account(provider_account)
    if settings.log_format not in ("text", "json"):
        raise ConfigError(f"MALIPO_LOG_FORMAT must be 'text' or 'json', not "
                          f"{settings.log_format!r}")
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        try:
            tracing.otlp_protocol()
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise ConfigError("TLS needs both MALIPO_TLS_CERT and MALIPO_TLS_KEY")
    settings.operator_key_pairs()  # malformed operator keys
    settings.required_api_key_pairs()


def parse_listen(listen: str, what: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{what} {listen!r} is not host:port (e.g. 127.0.0.1:50051)")
    return host, int(port)


def _try_bind(host: str, port: int, what: str, listen: str) -> None:
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET  # a host name: resolved by bind
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {listen} ({what}): "
                          f"{exc.strerror or exc}") from None


def _check_account(account: ProviderAccount) -> None:
    """Build the account's connector as start-up will (no I/O): a missing or unusable setting
    is one line here, not a traceback from inside start-up. The errors name the account and
    the setting, never a secret's value (connectors/settings.py)."""
    try:
        registry.build(account)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0]) if exc.args else str(exc)) from None
    except MalipoError as exc:
        raise ConfigError(str(exc)) from None


def check_database_url(dsn: str) -> None:
    if not dsn:
        return
    try:
        parts = urlsplit(dsn)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
        parts = None
    if parts is None or parts.scheme not in _DSN_SCHEMES or not port_ok:
        raise ConfigError("DATABASE_URL is not a PostgreSQL URL "
                          "(postgresql://user[:password]@host[:port]/database)")


def effective(settings: Settings) -> str:
    """The settings in force as JSON, secrets and key material masked (`check-config`)."""
    data: dict[str, Any] = settings.model_dump(mode="json")
    data["database_url"] = _without_password(settings.database_url)
    data["nats_url"] = _without_password(settings.nats_url)
    data["api_keys"] = [f"{tenant}={MASK}" for tenant, _key in settings.api_key_pairs()]
    data["operator_keys"] = [f"{name}={MASK}" for name, _key in settings.operator_key_pairs()]
    data["accounts"] = [{**a, "settings": mask_mapping(a["settings"])}
                        for a in data["accounts"]]
    data["webhooks"] = [mask_mapping(w) for w in data["webhooks"]]  # their signing secrets
    return json.dumps(data, indent=2, sort_keys=True)


def _without_password(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
