# pyright: basic
"""Traces: off without OTEL_EXPORTER_OTLP_ENDPOINT; when on, gRPC, asyncpg, outbound HTTP and
callback spans carry tenant and payment ids and never a phone number."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from malipo import tracing
from malipo.payments.v1 import payment_pb2, payment_service_pb2
from tests.e2e.test_payments_api import wait_status
from tests.e2e.test_watch_status import collect
from tests.harness import auth, create_request, running, settings_for

PHONE_DIGITS = "712345600"


@dataclass
class Span:
    name: str
    kind: str
    attributes: dict[str, Any]


def test_off_unless_an_otlp_endpoint_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert tracing.configure() is None
    assert not tracing.enabled()  # the callback listener opens no span then


async def test_spans_carry_ids_and_no_pii(database_url: str) -> None:
    exporter = InMemorySpanExporter()
    shutdown = tracing.configure(exporter=exporter)
    assert shutdown is not None
    assert tracing.enabled()
    try:
        async with running(settings_for(database_url)) as service:
            created = await service.stub.CreatePayment(
                create_request(f"trace-{uuid.uuid4()}", phone="+254" + PHONE_DIGITS),
                metadata=auth())
            payment_id = created.payment.id
            await wait_status(service, payment_id, payment_pb2.STATUS_SUCCEEDED)
            await service.stub.GetPayment(
                payment_service_pb2.GetPaymentRequest(payment_id=payment_id), metadata=auth())
            # Events stream as bytes serialised once (api/presend.py), through the
            # instrumented handler too.
            watched = await collect(service, "acme", after=0, payment_id=payment_id)
            assert [e.new_status for e in watched][-1] == payment_pb2.STATUS_SUCCEEDED
            assert {e.payment_id for e in watched} == {payment_id}
            async with asyncio.timeout(5):
                while not any(s.name.startswith("callback ")
                              for s in exporter.get_finished_spans()):
                    await asyncio.sleep(0.05)
    finally:
        shutdown()
    assert not tracing.enabled()
    spans = exporter.get_finished_spans()
    by_name: dict[str, list[Span]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(Span(span.name, span.kind.name,
                                                      dict(span.attributes or {})))
    get = by_name["/malipo.payments.v1.PaymentService/GetPayment"]
    assert any(s.attributes.get("malipo.payment_id") == payment_id and
               s.attributes.get("malipo.tenant") == "acme" for s in get)
    assert by_name["/malipo.payments.v1.PaymentService/WatchStatus"]
    create = by_name["/malipo.payments.v1.PaymentService/CreatePayment"]
    assert create[0].attributes.get("malipo.tenant") == "acme"
    every = [s for same in by_name.values() for s in same]
    db = [s for s in every if s.attributes.get("db.system") == "postgresql"
          or s.attributes.get("db.system.name") == "postgresql"]
    assert db, sorted(by_name)
    assert not any("db.statement.parameters" in s.attributes for s in db)
    callback = by_name["callback simulator"]
    assert callback and callback[0].attributes["http.response.status_code"] == 200
    # The simulator's callback POST is an aiohttp client call: traced, URL without a query.
    assert any(s.kind == "CLIENT" and "/callbacks/simulator/" in
               str(s.attributes.get("http.url") or s.attributes.get("url.full") or "")
               for s in every)
    for span in spans:
        text = span.name + repr(dict(span.attributes or {})) + repr(
            [dict(e.attributes or {}) for e in span.events])
        assert PHONE_DIGITS not in text, span.name
