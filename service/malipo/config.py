"""Typed settings, loaded once: environment variables and an optional TOML file.

Environment (all optional): DATABASE_URL, MALIPO_GRPC_LISTEN, MALIPO_HTTP_LISTEN,
MALIPO_DATA_DIR, MALIPO_API_KEYS ("tenant=key,..."), MALIPO_CONFIG (TOML path),
MALIPO_PUBLIC_CALLBACK_BASE, MALIPO_NATS_URL, MALIPO_LOG_FORMAT (text|json),
MALIPO_HEARTBEAT_S, MALIPO_TLS_CERT/MALIPO_TLS_KEY (TLS on both listeners),
MALIPO_TLS_CLIENT_CA (mTLS for gRPC callers), MALIPO_HTTP_TLS_CLIENT_CA (mTLS for callbacks),
MALIPO_RATE_LIMIT_PER_S, MALIPO_RATE_LIMIT_BURST, MALIPO_MAX_CONCURRENT_RPCS,
MALIPO_MAX_MESSAGE_BYTES, MALIPO_WEBHOOK_* (delivery timing). The TOML file may also hold
`api_keys`, `[[accounts]]`, `[policies.<provider>]` and `[[webhooks]]`; see
deploy/malipo.example.toml.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from malipo.app.connector import ProviderAccount
from malipo.app.policies import PollPolicy
from malipo.app.webhooks import ConfigEndpoint


class AccountConfig(BaseModel):
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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MALIPO_", extra="ignore")

    grpc_listen: str = "127.0.0.1:50051"
    http_listen: str = "127.0.0.1:8080"
    data_dir: Path = Path(".malipo")
    database_url: str = Field(default="", validation_alias=AliasChoices(
        "DATABASE_URL", "MALIPO_DATABASE_URL"))
    api_keys: str = ""
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
    retention_interval_s: float = 3600.0
    workers: int = 1
    # Per process: the pool plus ~2 long-lived connections (event hub LISTEN, relay lock).
    db_pool_max: int = 20
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
    policies: dict[str, PolicyConfig] = Field(default_factory=dict)

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Environment first, then the TOML file named by MALIPO_CONFIG, then overrides."""
        base = cls(**{k: v for k, v in overrides.items() if v is not None})
        if base.config is None:
            return base
        data = tomllib.loads(Path(base.config).read_text(encoding="utf-8"))
        merged = {**data, **{k: v for k, v in overrides.items() if v is not None}}
        if "api_keys" in data and isinstance(data["api_keys"], dict):
            merged["api_keys"] = ",".join(f"{t}={k}" for t, k in data["api_keys"].items())
        return cls(**merged)

    def tenant_keys(self) -> dict[str, str]:
        keys: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in self.api_keys.split(","))):
            tenant, sep, key = pair.partition("=")
            if not sep or not tenant or not key:
                raise ValueError("MALIPO_API_KEYS must look like 'tenant=key,tenant2=key2'")
            keys[tenant.strip()] = key.strip()
        return keys

    def callback_base(self) -> str:
        scheme = "https" if self.tls_cert else "http"
        return (self.public_callback_base or f"{scheme}://{self.http_listen}").rstrip("/")

    def provider_accounts(self) -> list[ProviderAccount]:
        configured = self.accounts or [AccountConfig(provider="simulator")]
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
