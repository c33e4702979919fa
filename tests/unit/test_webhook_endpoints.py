"""Which webhook URLs may be registered: https anywhere, plain http only to this machine."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from malipo.app.webhooks import check_url, config_endpoint_id
from malipo.config import Settings
from malipo.webhooks.signing import new_secret


@pytest.mark.parametrize("url", [
    "https://hooks.example.com/malipo", "https://10.0.0.5:8443/in?team=ops",
    "http://127.0.0.1:8080/hook", "http://127.9.9.9/x", "http://[::1]:9000/", "http://localhost/",
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
