"""Typed settings, loaded once: flags over environment variables over a TOML file over defaults.

Environment (all optional): DATABASE_URL, MALIPO_GRPC_LISTEN, MALIPO_HTTP_LISTEN,
MALIPO_METRICS_LISTEN (/metrics on its own listener instead of the callback port),
MALIPO_DATA_DIR, MALIPO_API_KEYS ("tenant=key,..."; a tenant may have several keys, so keys
rotate without downtime), MALIPO_API_KEYS_FILE (the same pairs, one per line, re-read when it
changes and on SIGHUP), MALIPO_CONFIG (TOML path), MALIPO_PUBLIC_CALLBACK_BASE,
MALIPO_NATS_URL, MALIPO_LOG_FORMAT (text|json), MALIPO_HEARTBEAT_S,
MALIPO_TLS_CERT/MALIPO_TLS_KEY (TLS on both listeners), MALIPO_TLS_CLIENT_CA (mTLS for gRPC
callers), MALIPO_HTTP_TLS_CLIENT_CA (mTLS for callbacks), MALIPO_RATE_LIMIT_PER_S,
MALIPO_RATE_LIMIT_BURST, MALIPO_MAX_CONCURRENT_RPCS, MALIPO_MAX_MESSAGE_BYTES,
MALIPO_GRPC_MAX_CONNECTION_AGE_S / _GRACE_S, MALIPO_WEBHOOK_* (delivery timing, and
MALIPO_WEBHOOK_ALLOW_PRIVATE_NETWORKS), MALIPO_EXCHANGE_RETENTION_DAYS,
MALIPO_IDEMPOTENCY_KEY_RETENTION_DAYS (at least 1), MALIPO_EVENT_RETENTION_DAYS. The TOML
file may hold any of these fields (lower case, no prefix) plus `[api_keys]`, `[[accounts]]`,
`[policies.<provider>]` and `[[webhooks]]`; see
deploy/malipo.example.toml. A key the file does not know is an error naming the nearest one.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from malipo.app.connector import ProviderAccount
from malipo.app.policies import PollPolicy
from malipo.app.webhooks import ConfigEndpoint

# Idempotency keys are kept at least a day (see Settings._keys_kept_at_least_a_day); every
# retention window at most a century, which is "forever" without overflowing a date.
MIN_KEY_RETENTION_DAYS = 1.0
MAX_RETENTION_DAYS = 36500.0


class ConfigError(ValueError):
    """A configuration mistake, told in one line before anything starts."""


class AccountConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str
    name: str = "default"
    tenants: list[str] = Field(default_factory=list)
    settings: dict[str, str] = Field(default_factory=dict)


class WebhookConfig(BaseModel):
    """A `[[webhooks]]` entry: an endpoint the operator provisions, with the secret from
    their secret store. A table like `[[accounts]]` rather than a flat variable, because each
    entry is a record holding a secret; MALIPO_WEBHOOKS takes the same list as JSON."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key must not drop the endpoint

    tenant: str
    url: str
    secret: str = Field(repr=False)  # "whsec_" + base64
    description: str = ""


# A `[policies.<provider>]` table is the reconciler's PollPolicy itself: pydantic validates
# the dataclass's fields and defaults, so the two can never disagree.
PolicyConfig = PollPolicy

ApiKeyPairs = list[tuple[str, str]]


def parse_key_pairs(text: str, source: str) -> ApiKeyPairs:
    """`tenant=key` pairs separated by commas or new lines (`#` starts a comment). A tenant
    named twice keeps both keys: the old one works until it is removed."""
    pairs: ApiKeyPairs = []
    for line in text.splitlines():
        for item in filter(None, (p.strip() for p in line.split("#", 1)[0].split(","))):
            tenant, sep, key = item.partition("=")
            if not sep or not tenant.strip() or not key.strip():
                raise ConfigError(f"{source} must hold 'tenant=key' pairs "
                                  "(comma- or line-separated); one entry has no tenant or key")
            pairs.append((tenant.strip(), key.strip()))
    return pairs


class _TomlFile(PydanticBaseSettingsSource):
    """The TOML file named by `config` (a flag) or MALIPO_CONFIG: below the environment."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._path = path

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads the whole file at once

    def __call__(self) -> dict[str, Any]:
        if self._path is None:
            return {}
        try:
            data = tomllib.loads(Path(self._path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {self._path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {self._path} is not valid TOML: {exc}") from None
        known = set(self.settings_cls.model_fields) - {"config"}
        for key in data:
            if key not in known:
                near = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise ConfigError(f"config file {self._path}: unknown key {key!r}{hint}")
        keys = data.get("api_keys")
        if isinstance(keys, dict):
            data["api_keys"] = ",".join(_table_pairs(keys))  # pyright: ignore[reportUnknownArgumentType]
        return data


def _table_pairs(table: dict[str, Any]) -> Iterable[str]:
    """`[api_keys]` as `shop = "key"` or `shop = ["old", "new"]`."""
    for tenant, value in table.items():
        for key in value if isinstance(value, list) else [value]:  # pyright: ignore[reportUnknownVariableType]
            yield f"{tenant}={key}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MALIPO_", extra="forbid")

    grpc_listen: str = "127.0.0.1:50051"
    http_listen: str = "127.0.0.1:8080"
    # Empty: /metrics is served by the callback listener. Set it to keep metrics off the
    # public callback port.
    metrics_listen: str = ""
    data_dir: Path = Path(".malipo")
    database_url: str = Field(default="", validation_alias=AliasChoices(
        "DATABASE_URL", "MALIPO_DATABASE_URL", "database_url"))
    api_keys: str = ""
    api_keys_file: Path | None = None
    api_keys_reload_s: float = 5.0   # how often the keys file's modification time is checked
    config: Path | None = None
    public_callback_base: str = ""
    nats_url: str = ""
    event_retention_days: float = 30.0
    log_format: str = "text"
    heartbeat_s: float = 15.0
    max_callback_bytes: int = 256 * 1024
    reconcile_interval_s: float = 0.5
    # Provider exchange log and callback journal: kept this long, purged every interval.
    exchange_retention_days: float = 30.0
    # Idempotency keys of every operation: kept this long, purged by the same job (see
    # store/retention.py); _keys_kept_at_least_a_day says why there is a floor.
    idempotency_key_retention_days: float = 30.0
    retention_interval_s: float = 3600.0
    workers: int = 1
    # Per process: the pool plus ~2 long-lived connections (event hub LISTEN, relay lock).
    db_pool_max: int = 20
    # Payments this process wrote lately, kept to decide their callbacks without reading the
    # row again (app/inflight.py RecentPayments), up to about this much memory (a payment
    # with short texts is ~1.2 KB); 0 keeps none.
    recent_payments_mb: float = Field(default=64.0, ge=0)
    # Operator keys (ResolvePayment for every tenant), "name=key,...": see api/operators.py.
    operator_keys: str = ""
    # TLS: cert+key turn it on for gRPC and the callback listener; a client CA adds mTLS.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    http_tls_client_ca: Path | None = None
    # Limits at the gRPC edge (0 turns one off); see api/limits.py.
    rate_limit_per_s: float = 200.0
    rate_limit_burst: int = 400
    max_concurrent_rpcs: int = 512
    max_message_bytes: int = 4 * 1024 * 1024
    # A connection older than this is sent GOAWAY (after the grace, its calls are ended), so
    # clients balancing round_robin over a headless Service reach new pods; WatchStatus
    # clients resume from their cursor. 0 keeps connections forever.
    grpc_max_connection_age_s: float = 1800.0
    grpc_max_connection_age_grace_s: float = 60.0
    accounts: list[AccountConfig] = Field(default_factory=list)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    # Outbound webhook delivery (webhooks/delivery.py, DeliveryPolicy): retried with
    # doubling backoff for webhook_retry_for_s (24 h), then the endpoint is FAILING.
    webhook_poll_s: float = 1.0
    webhook_timeout_s: float = 10.0
    webhook_lease_s: float = 60.0
    webhook_backoff_first_s: float = 5.0
    webhook_backoff_max_s: float = 3600.0
    webhook_retry_for_s: float = 86400.0
    # Off: webhook URLs naming internal addresses (10/8, 169.254/16, fd00::/8...) are refused,
    # and so is delivery to a name resolving to one, so a tenant cannot aim Malipo at the
    # network it runs in. On-premises receivers on a private network need it on.
    webhook_allow_private_networks: bool = False
    policies: dict[str, PolicyConfig] = Field(default_factory=dict)

    @field_validator("idempotency_key_retention_days")
    @classmethod
    def _keys_kept_at_least_a_day(cls, days: float) -> float:
        """A purged key no longer answers its replay: a client that retries a CreatePayment
        after the window makes a second payment (the contract: keys are kept at least the
        window, then forgotten). Clients retry through outages and overnight queues, so a
        window under a day is refused; the ceiling keeps the purge's cutoff a real date."""
        if not days >= MIN_KEY_RETENTION_DAYS:  # NaN too
            raise ValueError(
                f"MALIPO_IDEMPOTENCY_KEY_RETENTION_DAYS must be at least "
                f"{MIN_KEY_RETENTION_DAYS:g} day, not {days:g}: a key purged sooner lets a "
                "late retry of a CreatePayment create a second payment")
        if days > MAX_RETENTION_DAYS:
            raise ValueError(f"MALIPO_IDEMPOTENCY_KEY_RETENTION_DAYS must be at most "
                             f"{MAX_RETENTION_DAYS:g} days (a century), not {days:g}")
        return days

    @field_validator("event_retention_days", "exchange_retention_days")
    @classmethod
    def _a_real_window(cls, days: float, info: ValidationInfo) -> float:
        """A window of nothing (or less) would purge the event log under the streams reading
        it, or the journal before support reads it; a huge one (inf, 1e6) made a cutoff before
        year 1 and failed the purge every hour. The ceiling is the keys': a century."""
        name = f"MALIPO_{(info.field_name or '').upper()}"
        if not 0 < days <= MAX_RETENTION_DAYS:  # NaN too
            raise ValueError(f"{name} must be more than 0 and at most "
                             f"{MAX_RETENTION_DAYS:g} days, not {days:g}")
        return days

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (init arguments) > environment > the TOML file > defaults."""
        flags = init_settings.init_kwargs if isinstance(init_settings, InitSettingsSource) else {}
        path = flags.get("config") or os.environ.get("MALIPO_CONFIG") or None
        return init_settings, env_settings, _TomlFile(settings_cls, Path(path) if path else None)

    @classmethod
    def load(cls, **flags: Any) -> Settings:
        """The effective settings; flags that are None were not given."""
        return cls(**{k: v for k, v in flags.items() if v is not None})

    def api_key_pairs(self) -> ApiKeyPairs:
        """Every (tenant, key): MALIPO_API_KEYS (or the file's [api_keys]), then the keys file."""
        pairs = parse_key_pairs(self.api_keys, "MALIPO_API_KEYS")
        if self.api_keys_file is not None:
            try:
                text = Path(self.api_keys_file).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read MALIPO_API_KEYS_FILE {self.api_keys_file}: "
                                  f"{exc.strerror}") from None
            pairs += parse_key_pairs(text, f"MALIPO_API_KEYS_FILE {self.api_keys_file}")
        return pairs

    def required_api_key_pairs(self) -> ApiKeyPairs:
        """The keys; none is a mistake against a real DATABASE_URL (a development key is
        made only with the embedded database, where none means "make one")."""
        pairs = self.api_key_pairs()
        if not pairs and self.database_url:
            raise ConfigError("no API keys: with DATABASE_URL set, give MALIPO_API_KEYS or "
                              "MALIPO_API_KEYS_FILE (a development key is made only with the "
                              "embedded database)")
        return pairs

    def callback_base(self) -> str:
        scheme = "https" if self.tls_cert else "http"
        return (self.public_callback_base or f"{scheme}://{self.http_listen}").rstrip("/")

    def provider_accounts(self, default_tenants: Iterable[str] = ()) -> list[ProviderAccount]:
        """The configured accounts; with none configured, the simulator for `default_tenants`
        (the embedded development setup), so no tenant is served a simulator by accident."""
        tenants = sorted(default_tenants)
        configured = self.accounts or (
            [AccountConfig(provider="simulator", tenants=tenants)] if tenants else [])
        return [
            ProviderAccount(
                provider=a.provider, name=a.name, settings=dict(a.settings),
                tenants=frozenset(a.tenants),
                callback_url=f"{self.callback_base()}/callbacks/{a.provider}/{a.name}",
            )
            for a in configured
        ]

    def webhook_endpoints(self) -> list[ConfigEndpoint]:
        return [ConfigEndpoint(w.tenant, w.url, w.secret, w.description) for w in self.webhooks]

    def poll_policies(self) -> dict[str, PollPolicy]:
        return dict(self.policies)

    def operator_key_pairs(self) -> ApiKeyPairs:
        """MALIPO_OPERATOR_KEYS: (operator name, key), in MALIPO_API_KEYS's format; an
        operator may hold several keys while one rotates."""
        return parse_key_pairs(self.operator_keys, "MALIPO_OPERATOR_KEYS")
