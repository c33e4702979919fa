# pyright: basic
"""Fuzz every connector's parse_callback/verify_callback through the real callback listener:
random binary bodies, random headers and query strings, posted over a socket.

Never a 5xx (the listener answers 503 only when processing raised: an unhandled exception),
never an exception logged. Unsigned garbage is refused with a 4xx, except where a provider's
contract demands a 2xx for every delivery that was journaled (listed in ACK_ALWAYS)."""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from malipo.config import AccountConfig
from malipo.sandbox.gateway import GatewayFake
from malipo.sandbox.jambopay import JambopayFake
from malipo.sandbox.kkiapay import KkiapayFake
from malipo.sandbox.paykassma import PaykassmaFake
from tests.harness import Running, running, settings_for

pytestmark = pytest.mark.reliability
NOWHERE = "http://127.0.0.1:9"  # discard port: callbacks never need the provider's API


def accounts() -> list[AccountConfig]:
    gw, pk, jp, kk = GatewayFake(), PaykassmaFake(), JambopayFake(), KkiapayFake()
    return [
        AccountConfig(provider="simulator", name="default", settings={}),
        AccountConfig(provider="gateway", name="default", settings={
            "base_url": NOWHERE, "public_id": gw.public_id, "merchant_id": gw.merchant_id,
            "secret_key": gw.secret_key}),
        AccountConfig(provider="paykassma", name="default", settings={
            "api_url": NOWHERE, "pluginapi_secret": pk.secret,
            "withdrawal_private_key": pk.withdrawal_private_key,
            "postback_access_key": pk.postback_access_key,
            "postback_private_key": pk.postback_private_key,
            "plugin_url": "https://plugin.paykassma.example", "is_test": "true"}),
        AccountConfig(provider="jambopay", name="default", settings={
            "base_url": NOWHERE, "username": jp.username, "password": jp.password,
            "app_key": jp.app_key}),
        AccountConfig(provider="kkiapay", name="default", settings={
            "public_key": kk.keys["x-api-key"], "private_key": kk.keys["x-private-key"],
            "secret_key": kk.keys["x-secret-key"], "base_url": NOWHERE, "sandbox": "true",
            "webhook_secret": "fuzz-webhook-secret"}),
        AccountConfig(provider="kwik", name="default", settings={
            "base_url": NOWHERE, "api_key": "fuzz-key", "api_secret": "fuzz-secret",
            "payment_methods_id": "pam_debit_order", "webhook_secret": "fuzz-hook-secret"}),
    ]


PROVIDERS = [a.provider for a in accounts()]
# Providers whose callback contract wants a 2xx for a journaled (even refused) delivery;
# filled from what the test observes and asserted to stay this list. Empty means: every
# unauthenticated body is answered 4xx.
ACK_ALWAYS: dict[str, set[int]] = {}


@pytest.fixture(scope="module")
async def service(database_url: str) -> AsyncIterator[Running]:
    async with running(settings_for(database_url, accounts=accounts())) as svc:
        yield svc


header_names = st.sampled_from([
    "x-simulator-signature", "x-signature", "signature", "x-kkiapay-secret", "x-kwik-signature",
    "authorization", "x-hub-signature-256", "content-type", "x-request-id", "x-timestamp"])
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=80)
bodies = st.one_of(
    st.binary(max_size=2048),
    st.builds(lambda d: repr(d).replace("'", '"').encode(),
              st.dictionaries(st.text(max_size=12), st.one_of(
                  st.text(max_size=20), st.integers(), st.none(), st.booleans()), max_size=8)),
)


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 (127.0.0.1)
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_hostile_callbacks_never_5xx_never_raise_and_are_refused(
        service: Running, provider: str, caplog: pytest.LogCaptureFixture) -> None:
    base = f"{service.callback_base}/callbacks/{provider}/default"
    statuses: set[int] = set()
    caplog.set_level(logging.ERROR)

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(body=bodies, headers=st.dictionaries(header_names, header_values, max_size=4),
           query=st.dictionaries(st.sampled_from(["secret", "sig", "id", "status"]),
                                 header_values, max_size=2))
    def fuzz(body: bytes, headers: dict[str, str], query: dict[str, str]) -> None:
        url = f"{base}?{urllib.parse.urlencode(query)}" if query else base
        status = post(url, body, headers)
        assert status < 500, (status, body[:80], headers)
        statuses.add(status)

    # Blocking HTTP in a worker thread; the service keeps running on this loop meanwhile.
    await asyncio.to_thread(fuzz)

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [r.getMessage() for r in errors][:3]
    allowed = ACK_ALWAYS.get(provider, set())
    assert 404 not in statuses, statuses  # the account exists: its parser really ran
    assert statuses and all(400 <= s < 500 or s in allowed for s in statuses), (
        provider, statuses)
