"""Outbound webhook endpoints: the rules for registering them, and the port to their store.

Delivery itself (malipo.webhooks) reads the event log from each endpoint's cursor; these use
cases only change which endpoints exist and where their cursor stands.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from urllib.parse import urlsplit

from malipo.app.commands import MAX_TEXT, check_key, check_payment_id, fingerprint
from malipo.domain.errors import (
    FailedPrecondition,
    FieldViolation,
    IdempotencyKeyReused,
    InvalidRequest,
    NotFound,
    OutOfRange,
)
from malipo.domain.ids import new_ulid

MAX_URL = 2048
# Each endpoint is one more delivery loop over the tenant's events: a small cap bounds what
# one tenant can make every replica do (Stripe caps endpoints per account for the same reason).
MAX_ENDPOINTS_PER_TENANT = 20


class EndpointState(StrEnum):
    ACTIVE = "ACTIVE"
    FAILING = "FAILING"  # the retry budget ran out: stopped until a redelivery


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    id: str
    tenant: str
    url: str
    description: str
    state: EndpointState
    cursor: int  # every event of the tenant up to here is acknowledged
    attempts: int  # failed attempts at the event after the cursor
    last_error: str
    next_attempt_at: datetime
    failing_since: datetime | None
    created_at: datetime
    from_config: bool


@dataclass(frozen=True, slots=True)
class NewEndpoint:
    id: str
    tenant: str
    url: str
    description: str
    secret: str = field(repr=False)
    from_config: bool = False
    idempotency_key: str = ""
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class StoredEndpoint:
    """An endpoint with what only its creation may see again: the secret and fingerprint."""

    endpoint: WebhookEndpoint
    secret: str = field(repr=False)
    fingerprint: str


class WebhookEndpoints(Protocol):
    async def add(self, new: NewEndpoint, *, limit: int) -> StoredEndpoint | None:
        """Insert with its cursor at the log's head, unless the tenant has `limit` endpoints;
        when the idempotency key is taken, the endpoint holding it. None: limit reached."""
        ...

    async def put_config(self, endpoints: Sequence[NewEndpoint]) -> None:
        """Make the config endpoints exactly these (new ones start at the log's head; known
        ones keep their cursor and take the new secret, description and URL; a new URL
        starts with no failed attempts and ends any delivery's lease)."""
        ...

    async def list(self, tenant: str) -> Sequence[WebhookEndpoint]: ...

    async def get(self, tenant: str, endpoint_id: str) -> WebhookEndpoint | None: ...

    async def delete(self, tenant: str, endpoint_id: str) -> None: ...

    async def log_bounds(self) -> tuple[int, int]:
        """(purged_through, head) of the event log."""
        ...

    async def rewind(self, tenant: str, endpoint_id: str,
                     cursor: int) -> WebhookEndpoint | None:
        """Set the cursor, make it ACTIVE with no failures, and end any delivery's lease."""
        ...


@dataclass(frozen=True, slots=True)
class CreateEndpoint:
    tenant: str
    idempotency_key: str
    url: str
    description: str = ""

    def fingerprint(self) -> str:
        return fingerprint({"tenant": self.tenant, "url": self.url,
                            "description": self.description})


def check_url(url: str, field_name: str = "url", *,
              private_networks: bool = False) -> list[FieldViolation]:
    """https to public hosts; plain http only to this machine (development and tests),
    because an unencrypted POST of payment events must never cross a network.

    An https host written as an internal IP address (10.0.0.0/8, 169.254.169.254 the cloud
    metadata service, fd00::/8, 0.0.0.0...) is refused unless `private_networks`: otherwise
    any tenant could make Malipo POST into the network it runs in (SSRF). Names are checked
    when delivery resolves them (webhooks/addresses.py), since their answer can change.
    Loopback stays allowed over http, by design, for development and this repo's tests."""
    if not url:
        return [FieldViolation(field_name, "required")]
    if len(url) > MAX_URL or not url.isascii() or not url.isprintable():
        return [FieldViolation(field_name, f"printable ASCII, at most {MAX_URL} characters")]
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return [FieldViolation(field_name, "not a URL")]
    if parts.username is not None or parts.password is not None:
        return [FieldViolation(field_name, "no user:password part (it would be logged and "
                                           "stored in clear); put credentials in the path")]
    if parts.scheme == "https" and host:
        address = ip_literal(host)
        kind = "" if address is None or private_networks else internal_kind(address)
        if kind:
            return [FieldViolation(field_name, f"https:// to an internal address ({kind}) is "
                                               "refused: webhooks go to public addresses, "
                                               "internal networks only if the operator allows "
                                               "them")]
        return []
    if parts.scheme == "http" and _loopback(host):
        return []
    return [FieldViolation(field_name, "must be https://, or http:// to 127.0.0.0/8, ::1 "
                                       "or localhost")]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def ip_literal(host: str) -> IPAddress | None:
    """The address a URL host spells, legacy IPv4 forms included ("10.1", "0x0a000001",
    "167772161"): the system resolver reads those as addresses too, so they must not pass
    as names. None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def internal_kind(address: IPAddress) -> str:
    """Why `address` is not on the public internet ("private", "link-local"...), or ""."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.0.0.5 reaches 10.0.0.5 (Python 3.11 says public)
    for kind, found in (("loopback", address.is_loopback),
                        ("unspecified", address.is_unspecified),
                        ("link-local", address.is_link_local),
                        ("multicast", address.is_multicast),
                        ("private", address.is_private),
                        ("reserved", address.is_reserved)):
        if found:
            return kind
    return "" if address.is_global else "non-public"  # e.g. 100.64.0.0/10, carrier NAT


async def create_endpoint(store: WebhookEndpoints, cmd: CreateEndpoint,
                          new_secret: Callable[[], str], *,
                          private_networks: bool = False) -> StoredEndpoint:
    violations = check_key(cmd.idempotency_key) + check_url(
        cmd.url, private_networks=private_networks)
    if len(cmd.description) > MAX_TEXT:
        violations.append(FieldViolation("description", f"at most {MAX_TEXT} characters"))
    if violations:
        raise InvalidRequest(violations)
    key_print = cmd.fingerprint()
    stored = await store.add(NewEndpoint(
        id="whe_" + new_ulid(), tenant=cmd.tenant, url=cmd.url, description=cmd.description,
        secret=new_secret(), idempotency_key=cmd.idempotency_key, fingerprint=key_print),
        limit=MAX_ENDPOINTS_PER_TENANT)
    if stored is None:
        raise FailedPrecondition(f"at most {MAX_ENDPOINTS_PER_TENANT} webhook endpoints per "
                                 "tenant; delete one first", reason="TOO_MANY_ENDPOINTS")
    if stored.fingerprint != key_print:
        raise IdempotencyKeyReused("idempotency_key was used for another request")
    return stored


def config_endpoint_id(tenant: str, url: str) -> str:
    """Stable across restarts and replicas, so a config endpoint keeps its cursor."""
    return "whe_cfg_" + hashlib.sha256(f"{tenant}\n{url}".encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class ConfigEndpoint:
    tenant: str
    url: str
    secret: str = field(repr=False)
    description: str = ""


async def sync_config_endpoints(store: WebhookEndpoints, configured: Sequence[ConfigEndpoint],
                                check_secret: Callable[[str], object], *,
                                private_networks: bool = False) -> None:
    """At start: the config file's endpoints exist, those removed from it do not. Raises
    ValueError on a bad entry, so a typo stops the start instead of dropping events."""
    seen: dict[tuple[str, str], int] = {}
    for i, c in enumerate(configured):
        bad = check_url(c.url, f"webhooks[{i}].url", private_networks=private_networks)
        if not c.tenant:
            bad.append(FieldViolation(f"webhooks[{i}].tenant", "required"))
        if (first := seen.setdefault((c.tenant, c.url), i)) != i:
            # One endpoint id (config_endpoint_id): the store could not take both.
            bad.append(FieldViolation(f"webhooks[{i}]", f"same tenant and url as "
                                                        f"webhooks[{first}]"))
        if bad:
            raise ValueError("; ".join(f"{v.field}: {v.description}" for v in bad))
        check_secret(c.secret)
    await store.put_config([
        NewEndpoint(id=config_endpoint_id(c.tenant, c.url), tenant=c.tenant, url=c.url,
                    description=c.description, secret=c.secret, from_config=True)
        for c in configured])


async def list_endpoints(store: WebhookEndpoints, tenant: str) -> Sequence[WebhookEndpoint]:
    return await store.list(tenant)


async def _endpoint(store: WebhookEndpoints, tenant: str, endpoint_id: str) -> WebhookEndpoint:
    check_payment_id(endpoint_id, "endpoint_id")
    endpoint = await store.get(tenant, endpoint_id)
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return endpoint


async def delete_endpoint(store: WebhookEndpoints, tenant: str, endpoint_id: str) -> None:
    endpoint = await _endpoint(store, tenant, endpoint_id)
    if endpoint.from_config:
        raise FailedPrecondition(f"webhook endpoint {endpoint_id} comes from the config file; "
                                 "remove it there", reason="ENDPOINT_FROM_CONFIG")
    await store.delete(tenant, endpoint_id)


async def redeliver(store: WebhookEndpoints, tenant: str, endpoint_id: str,
                    from_sequence: int) -> WebhookEndpoint:
    await _endpoint(store, tenant, endpoint_id)
    purged_through, head = await store.log_bounds()
    if from_sequence < 1 or from_sequence > head + 1:
        raise InvalidRequest(FieldViolation("from_sequence", f"between 1 and {head + 1} (the "
                                                             "log's head + 1)"))
    if from_sequence <= purged_through:
        raise OutOfRange(f"events up to {purged_through} were purged by retention",
                         oldest_sequence=purged_through + 1)
    rewound = await store.rewind(tenant, endpoint_id, from_sequence - 1)
    if rewound is None:  # deleted meanwhile
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return rewound
