# pyright: basic
"""Item 20: provoke the paths most likely to leak (bad keys, failing callbacks, declines) and
scan everything logged so far in this session; the session-end scan covers the rest."""

from __future__ import annotations

import logging
import uuid

import aiohttp
import grpc
import pytest

from malipo.payments.v1 import payment_service_pb2
from tests.harness import TENANT_KEYS, auth, create_request, running, settings_for
from tests.reliability import logscan

pytestmark = pytest.mark.reliability
pb = payment_service_pb2


def test_the_scanner_finds_what_it_must() -> None:
    assert logscan.findings(f"key {TENANT_KEYS['acme']}") and logscan.findings("+254712345678")
    assert not logscan.findings("phone ***678 order 732007046722")


async def test_logs_and_errors_never_hold_secrets_keys_or_numbers(database_url: str) -> None:
    logging.getLogger("malipo").setLevel(logging.DEBUG)
    async with running(settings_for(database_url)) as service:
        bad = (("authorization", f"Bearer {TENANT_KEYS['acme']}x"),)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await service.stub.ListProviders(pb.ListProvidersRequest(), metadata=bad)
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await service.stub.CreatePayment(create_request(
                f"leak-{uuid.uuid4()}", phone="+2547123456789999"), metadata=auth())
        made = await service.stub.CreatePayment(create_request(f"leak-{uuid.uuid4()}"),
                                                metadata=auth())
        url = f"{service.callback_base}/callbacks/simulator/default"
        body = b'{"phone":"+254712345678","secret":"secret-test"}'
        async with aiohttp.ClientSession() as http, http.post(
                url, data=body, headers={"x-signature": "nope"}) as answer:
            assert answer.status in (400, 401)
        assert made.payment.id
        errors = f"{refused.value.details()} {invalid.value.details()}"
    assert not logscan.findings(errors)
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = logscan.log_path().read_text(encoding="utf-8", errors="replace")
    assert "malipo" in text            # records were captured at all
    assert logscan.findings(text) == []
