"""Which webhook URLs may be registered: https to public hosts, plain http only to this
machine; and which addresses delivery may connect to once a name is resolved."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from pydantic import ValidationError

from malipo.app.webhooks import (
    ConfigEndpoint,
    NewEndpoint,
    WebhookEndpoints,
    check_url,
    config_endpoint_id,
    sync_config_endpoints,
)
from malipo.config import Settings
from malipo.webhooks.addresses import InternalAddress, PublicOnlyResolver
from malipo.webhooks.signing import new_secret, parse_secret


@pytest.mark.parametrize("url", [
    "https://hooks.example.com/malipo", "https://8.8.8.8:8443/in?team=ops",
    "https://[2001:4860:4860::8888]/in", "http://127.0.0.1:8080/hook", "http://127.9.9.9/x",
    "http://[::1]:9000/", "http://localhost/",
])
def test_accepted(url: str) -> None:
    assert check_url(url) == []


@pytest.mark.parametrize(("url", "rule"), [
    ("", "required"),
    ("http://example.com/hook", "https://"),
    ("http://10.0.0.5/hook", "https://"),
    ("http://localhost.example.com/", "https://"),
    ("ftp://127.0.0.1/", "https://"),
    ("https:///nohost", "https://"),
    ("hooks.example.com/malipo", "https://"),
    ("https://user:pw@hooks.example.com/", "user:password"),
    ("https://hooks.example.com:99999/", "not a URL"),
    ("https://hooks.example.com/" + "a" * 2048, "2048"),
    ("https://hooks.example.com/\u00e9", "ASCII"),
])
def test_refused_with_the_rule_named(url: str, rule: str) -> None:
    [violation] = check_url(url)
    assert violation.field == "url"
    assert rule in violation.description


INTERNAL = [
    ("https://10.0.0.5:8443/in?team=ops", "private"),
    ("https://192.168.1.10/", "private"),
    ("https://172.16.0.1/", "private"),
    ("https://169.254.169.254/latest/meta-data/", "link-local"),  # cloud metadata
    ("https://[fe80::1]/", "link-local"),
    ("https://[fd00::1]/", "private"),  # unique-local
    ("https://0.0.0.0:8443/", "unspecified"),  # Linux connects it to this machine
    ("https://[::]/", "unspecified"),
    ("https://127.0.0.1/", "loopback"),  # http:// only, as before
    ("https://[::1]/", "loopback"),
    ("https://224.0.0.1/", "multicast"),
    ("https://240.0.0.1/", "private"),  # reserved 240/4 (Python files it under private)
    ("https://100.64.0.1/", "non-public"),  # carrier-grade NAT
    ("https://[::ffff:10.0.0.5]/", "private"),  # IPv4-mapped
    ("https://10.1/", "private"),  # legacy forms the system resolver reads as 10.0.0.1
    ("https://167772161/", "private"),
    ("https://0x0a000001/", "private"),
]


@pytest.mark.parametrize(("url", "kind"), INTERNAL)
def test_internal_addresses_are_refused_for_https(url: str, kind: str) -> None:
    [violation] = check_url(url)
    assert violation.field == "url"
    assert f"https:// to an internal address ({kind}) is refused" in violation.description


@pytest.mark.parametrize(("url", "kind"), INTERNAL)
def test_the_operator_may_allow_internal_networks(url: str, kind: str) -> None:
    assert check_url(url, private_networks=True) == []


def test_allowing_internal_networks_never_allows_plain_http_across_one() -> None:
    [violation] = check_url("http://10.0.0.5/hook", private_networks=True)
    assert "https://" in violation.description


class Answers(AbstractResolver):
    """A DNS that answers `answers[host]`."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.closed = False

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host=a, port=port, family=family, proto=0,
                              flags=0) for a in self.answers[host]]

    async def close(self) -> None:
        self.closed = True


async def test_a_name_answering_any_internal_address_is_refused_loopback_and_public_pass() \
        -> None:
    dns = Answers({"public.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
                   "localhost": ["127.0.0.1", "::1"],
                   "metadata.example": ["169.254.169.254"],
                   "mixed.example": ["93.184.215.14", "10.0.0.7"],
                   "ula.example": ["fd12:3456::1"],
                   "mapped.example": ["::ffff:192.168.0.1"]})
    resolver = PublicOnlyResolver(dns)
    assert [a["host"] for a in await resolver.resolve("public.example", 443)] == \
        dns.answers["public.example"]
    assert len(await resolver.resolve("localhost", 80)) == 2
    for host, kind in (("metadata.example", "link-local"), ("mixed.example", "private"),
                       ("ula.example", "private"), ("mapped.example", "private")):
        with pytest.raises(InternalAddress) as refused:
            await resolver.resolve(host, 443)
        assert refused.value.kind == kind
        assert host not in str(refused.value) and "169.254" not in str(refused.value)
    await resolver.close()
    assert dns.closed


def test_config_endpoint_ids_are_stable_and_distinct() -> None:
    a = config_endpoint_id("acme", "https://a.example/h")
    assert a == config_endpoint_id("acme", "https://a.example/h")
    assert a != config_endpoint_id("globex", "https://a.example/h")
    assert a != config_endpoint_id("acme", "https://a.example/h2")
    assert a.startswith("whe_cfg_")


def test_config_file_webhooks_load_and_a_misspelt_key_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "malipo.toml"
    secret = new_secret()
    config.write_text(f'[[webhooks]]\ntenant = "acme"\nurl = "https://h.example/in"\n'
                      f'secret = "{secret}"\n')
    [endpoint] = Settings.load(config=config).webhook_endpoints()
    assert (endpoint.tenant, endpoint.url, endpoint.secret) == (
        "acme", "https://h.example/in", secret)
    assert secret not in repr(Settings.load(config=config))
    config.write_text(config.read_text() + 'sekret = "x"\n')
    with pytest.raises(ValidationError, match="sekret"):
        Settings.load(config=config)


class ConfigStore:
    """Records what sync_config_endpoints stores (the rest of the port is not called)."""

    def __init__(self) -> None:
        self.put: list[NewEndpoint] = []

    async def put_config(self, endpoints: Sequence[NewEndpoint]) -> None:
        self.put = list(endpoints)


async def test_a_config_endpoint_on_an_internal_address_stops_the_start_unless_allowed() \
        -> None:
    configured = [ConfigEndpoint("acme", "https://10.0.0.5/in", new_secret())]
    store = ConfigStore()
    with pytest.raises(ValueError, match=r"webhooks\[0\]\.url: .*internal address \(private\)"):
        await sync_config_endpoints(cast("WebhookEndpoints", store), configured, parse_secret)
    assert store.put == []
    await sync_config_endpoints(cast("WebhookEndpoints", store), configured, parse_secret,
                                private_networks=True)
    assert [e.url for e in store.put] == ["https://10.0.0.5/in"]


async def test_a_config_endpoint_listed_twice_stops_the_start() -> None:
    """Both would be one endpoint id; the database would refuse the pair with a raw error."""
    twice = [ConfigEndpoint("acme", "https://h.example/in", new_secret()),
             ConfigEndpoint("acme", "https://h.example/in", new_secret())]
    store = ConfigStore()
    with pytest.raises(ValueError, match=r"webhooks\[1\]: same tenant and url as webhooks\[0\]"):
        await sync_config_endpoints(cast("WebhookEndpoints", store), twice, parse_secret)
    assert store.put == []


def test_private_networks_are_an_explicit_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not Settings.load().webhook_allow_private_networks
    monkeypatch.setenv("MALIPO_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
    assert Settings.load().webhook_allow_private_networks
