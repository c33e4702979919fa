"""The floor of this stack: bare servers doing only the durable work the contract needs, on the
same PostgreSQL, driven by the same load generator as Malipo. Work Malipo does beyond a floor
is ours to justify or remove.

    python -m tests.bench.floors grpc|http DSN HOST:PORT API_KEY CALLBACK_SECRET

- gRPC (`malipo.payments.v1.PaymentService`, the real request and response types):
  CreatePayment authenticates the key by its SHA-256 digest, parses, then commits the
  idempotency key, the payment and its first event in one statement; the provider's answer
  (the simulator's, in process, as in Malipo) and its event commit in a second. A key seen
  before answers its payment after comparing the request's fingerprint (the replay).
  GetPayment is one indexed read by id and tenant.
- HTTP: POST /callbacks/simulator/default verifies the simulator's HMAC over the raw body
  (written here again from its definition: t=<unix>,v1=hex(HMAC-SHA256(secret, "<t>." + body))),
  then journals the delivery and applies the guarded update with its event in one statement.

No outbox or relay (events get a bigserial, which is not gap-free under concurrency: the floor
does not promise what WatchStatus does), no exchange log, logs, metrics or tracing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import sys
import time
from typing import Any

import asyncpg
import grpc
from aiohttp import web
from google.protobuf.timestamp_pb2 import Timestamp

from malipo.payments.v1 import money_pb2, payment_pb2
from malipo.payments.v1 import payment_service_pb2 as pb
from tests.bench.baselines import start_http

SERVICE = "malipo.payments.v1.PaymentService"
SCHEMA = """
CREATE TABLE IF NOT EXISTS floor_keys (
    tenant text NOT NULL, key text NOT NULL, fingerprint bytea NOT NULL,
    payment_id text NOT NULL, PRIMARY KEY (tenant, key));
CREATE TABLE IF NOT EXISTS floor_payments (
    id text PRIMARY KEY, tenant text NOT NULL, status text NOT NULL,
    amount_minor bigint NOT NULL, currency text NOT NULL, phone text NOT NULL,
    provider_reference text NOT NULL DEFAULT '', metadata jsonb NOT NULL,
    created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS floor_events (
    sequence bigserial PRIMARY KEY, payment_id text NOT NULL, tenant text NOT NULL,
    old_status text NOT NULL, new_status text NOT NULL, occurred_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS floor_journal (
    id bigserial PRIMARY KEY, body bytea NOT NULL, headers jsonb NOT NULL,
    received_at timestamptz NOT NULL);
"""
_ACCEPT = """
WITH k AS (
    INSERT INTO floor_keys (tenant, key, fingerprint, payment_id) VALUES ($1, $2, $3, $4)
    ON CONFLICT DO NOTHING RETURNING payment_id),
p AS (
    INSERT INTO floor_payments (id, tenant, status, amount_minor, currency, phone, metadata,
                                created_at, updated_at)
    SELECT payment_id, $1, 'PENDING', $5, $6, $7, $8, now(), now() FROM k RETURNING id)
INSERT INTO floor_events (payment_id, tenant, old_status, new_status, occurred_at)
SELECT id, $1, '', 'PENDING', now() FROM p RETURNING payment_id"""
_ANSWERED = """
WITH u AS (
    UPDATE floor_payments SET status = 'PROCESSING', provider_reference = $2, updated_at = now()
    WHERE id = $1 AND status = 'PENDING' RETURNING *),
e AS (
    INSERT INTO floor_events (payment_id, tenant, old_status, new_status, occurred_at)
    SELECT id, tenant, 'PENDING', 'PROCESSING', updated_at FROM u)
SELECT * FROM u"""
_BY_KEY = """
SELECT k.fingerprint, p.* FROM floor_keys k JOIN floor_payments p ON p.id = k.payment_id
WHERE k.tenant = $1 AND k.key = $2"""
_GET = "SELECT * FROM floor_payments WHERE id = $1 AND tenant = $2"
_CALLBACK = """
WITH j AS (
    INSERT INTO floor_journal (body, headers, received_at) VALUES ($1, $2, now()) RETURNING id),
u AS (
    UPDATE floor_payments SET status = 'SUCCEEDED', updated_at = now()
    WHERE id = $3 AND provider_reference = $4 AND status = ANY('{PROCESSING,PENDING}')
    RETURNING id, tenant, updated_at)
INSERT INTO floor_events (payment_id, tenant, old_status, new_status, occurred_at)
SELECT u.id, u.tenant, 'PROCESSING', 'SUCCEEDED', u.updated_at FROM u, j RETURNING sequence"""


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _timestamp(value: Any) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


_STATUS: dict[str, Any] = {name: getattr(payment_pb2, f"STATUS_{name}")
                           for name in ("PENDING", "PROCESSING", "SUCCEEDED")}


def _payment(row: asyncpg.Record) -> payment_pb2.Payment:
    return payment_pb2.Payment(
        id=row["id"], direction=payment_pb2.DIRECTION_COLLECTION, provider="simulator",
        status=_STATUS[row["status"]],
        amount=money_pb2.Money(amount_minor=row["amount_minor"], currency=row["currency"]),
        customer=payment_pb2.Customer(phone_number=row["phone"]),
        provider_reference=row["provider_reference"], metadata=json.loads(row["metadata"]),
        created_at=_timestamp(row["created_at"]), updated_at=_timestamp(row["updated_at"]))


class FloorServicer:
    def __init__(self, pool: asyncpg.Pool, api_key: str) -> None:
        self._pool = pool
        self._tenants = {_digest(api_key): "bench"}

    def _tenant(self, context: grpc.aio.ServicerContext[Any, Any]) -> str:
        for name, value in context.invocation_metadata() or ():
            if name == "authorization":
                tenant = self._tenants.get(_digest(str(value).removeprefix("Bearer ")))
                if tenant:
                    return tenant
        raise PermissionError

    async def create(self, request: pb.CreatePaymentRequest,
                     context: grpc.aio.ServicerContext[Any, Any]) -> pb.CreatePaymentResponse:
        tenant = self._tenant(context)
        fingerprint = hashlib.sha256(request.SerializeToString(deterministic=True)).digest()
        payment_id = "pay_" + secrets.token_hex(13)
        accepted = await self._pool.fetchval(
            _ACCEPT, tenant, request.idempotency_key, fingerprint, payment_id,
            request.amount.amount_minor, request.amount.currency,
            request.customer.phone_number, json.dumps(dict(request.metadata)))
        if accepted is None:  # the key was used: the replay
            row = await self._pool.fetchrow(_BY_KEY, tenant, request.idempotency_key)
            if row is None or row["fingerprint"] != fingerprint:
                await context.abort(grpc.StatusCode.ALREADY_EXISTS, "key reused")
            assert row is not None
            return pb.CreatePaymentResponse(payment=_payment(row))
        reference = "SIM-" + payment_id[4:]  # the simulator answers at once, in process
        row = await self._pool.fetchrow(_ANSWERED, payment_id, reference)
        assert row is not None
        return pb.CreatePaymentResponse(payment=_payment(row))

    async def get(self, request: pb.GetPaymentRequest,
                  context: grpc.aio.ServicerContext[Any, Any]) -> pb.GetPaymentResponse:
        row = await self._pool.fetchrow(_GET, request.payment_id, self._tenant(context))
        if row is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such payment")
        assert row is not None
        return pb.GetPaymentResponse(payment=_payment(row))


def _unary(method: Any, request_type: Any, response_type: Any) -> Any:
    return grpc.unary_unary_rpc_method_handler(
        method, request_deserializer=request_type.FromString,
        response_serializer=response_type.SerializeToString)


async def grpc_floor(dsn: str, listen: str, api_key: str) -> None:
    pool = await _pool(dsn)
    servicer = FloorServicer(pool, api_key)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {
        "CreatePayment": _unary(servicer.create, pb.CreatePaymentRequest,
                                pb.CreatePaymentResponse),
        "GetPayment": _unary(servicer.get, pb.GetPaymentRequest, pb.GetPaymentResponse),
    }),))
    server.add_insecure_port(listen)
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


def verify(secret: str, header: str, body: bytes, tolerance_s: int = 300) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        stamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(time.time() - stamp) > tolerance_s:
        return False
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts.get("v1", ""))


async def http_floor(dsn: str, listen: str, secret: str) -> None:
    pool = await _pool(dsn)

    async def callback(request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(secret, request.headers.get("x-simulator-signature", ""), body):
            return web.Response(status=401)
        event = json.loads(body)
        headers = json.dumps({k.lower(): v for k, v in request.headers.items()})
        await pool.fetchval(_CALLBACK, body, headers, event["payment_id"], event["reference"])
        return web.Response(status=200, body=b'{"status":"ok"}', content_type="application/json")

    app = web.Application()
    app.router.add_post("/callbacks/{provider}/{account}", callback)
    await start_http(app, listen)
    print("ready", flush=True)
    await asyncio.Event().wait()


async def _pool(dsn: str) -> asyncpg.Pool:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(SCHEMA)
    finally:
        await conn.close()
    # Released without asyncpg's reset query, as Malipo's pool is (store/unit_of_work.py).
    pool = await asyncpg.create_pool(dsn, min_size=4, max_size=20, reset=_keep_session)
    assert pool is not None
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    del conn


async def processing(dsn: str) -> list[list[Any]]:
    """The floor's PROCESSING payments, as callback targets (id, reference, amount, currency)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT id, provider_reference, amount_minor, currency "
                                "FROM floor_payments WHERE status = 'PROCESSING' ORDER BY id")
    finally:
        await conn.close()
    return [[r["id"], r["provider_reference"], r["amount_minor"], r["currency"]] for r in rows]


def main() -> None:
    kind, dsn, listen, api_key, secret = sys.argv[1:6]
    import uvloop

    uvloop.run(grpc_floor(dsn, listen, api_key) if kind == "grpc"
               else http_floor(dsn, listen, secret))


if __name__ == "__main__":
    main()
