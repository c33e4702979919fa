"""`malipo serve | migrate | check-config | demo`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import uuid
from pathlib import Path

from pydantic import ValidationError

from malipo import logs, tracing
from malipo.config import ConfigError, Settings
from malipo.metrics import version

log = logging.getLogger("malipo")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="malipo", description=__doc__)
    parser.add_argument("--version", action="version", version=f"malipo {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gRPC server, callback listener, reconciler")
    _listen_flags(serve)
    serve.add_argument("--data-dir", type=Path, help="embedded PostgreSQL data (MALIPO_DATA_DIR)")
    serve.add_argument("--demo", action="store_true",
                       help="offline sandbox: every provider's fake in this process (README)")
    serve.add_argument("--workers", type=int,
                       help="N processes sharing both ports via SO_REUSEPORT (MALIPO_WORKERS)")
    migrate = sub.add_parser("migrate", help="apply migrations to DATABASE_URL")
    migrate.add_argument("--status", action="store_true",
                         help="list applied and pending migrations; apply nothing")
    check = sub.add_parser("check-config", help="validate the configuration and print it, "
                           "secrets masked (exit 2 on a mistake)")
    _listen_flags(check)
    demo = sub.add_parser("demo", help="create a simulator payment and watch it settle")
    demo.add_argument("--target", default=os.environ.get("MALIPO_GRPC_LISTEN", "127.0.0.1:50051"))
    demo.add_argument("--phone", default="+254712345600",
                      help="simulator scenario by last two digits (README)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        logs.configure("text")
        return _run(_demo(args.target, args.phone))
    try:
        return _command(args)
    except (ConfigError, ValidationError) as exc:
        print(f"malipo: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _listen_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grpc-listen", help="host:port (env MALIPO_GRPC_LISTEN)")
    parser.add_argument("--http-listen", help="callback listener host:port (MALIPO_HTTP_LISTEN)")


def _command(args: argparse.Namespace) -> int:
    """Every command but `demo`: settings first, checked before anything starts."""
    from malipo import preflight

    if args.command == "migrate":
        settings = Settings.load()
        preflight.check_database_url(settings.database_url)
        logs.configure("text")
        return _run(_migrate(settings, status_only=args.status))
    settings = Settings.load(grpc_listen=args.grpc_listen, http_listen=args.http_listen,
                             data_dir=getattr(args, "data_dir", None),
                             workers=getattr(args, "workers", None))
    if args.command == "check-config":
        preflight.check(settings, bind=False)
        print(preflight.effective(settings))
        return 0
    preflight.check(settings)
    logs.configure(settings.log_format)
    if settings.workers > 1 and not os.environ.get("MALIPO_WORKER_INDEX"):
        from malipo.workers import supervise

        return supervise(settings)
    return _run(_serve(settings, demo=args.demo))


def _one_line(exc: ConfigError | ValidationError) -> str:
    if isinstance(exc, ConfigError):
        return str(exc)
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "configuration"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"setting {where}: {first['msg']}{more}"


def _run(coro: object) -> int:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner = asyncio.run
    try:
        return int(runner(coro))  # type: ignore[arg-type]
    except KeyboardInterrupt:
        return 130


async def _serve(settings: Settings, *, demo: bool = False) -> int:
    from malipo.bootstrap import App
    from malipo.metrics import WORKER

    WORKER.labels(os.environ.get("MALIPO_WORKER_INDEX", "0")).set(1)
    stop_tracing = tracing.configure()  # only with OTEL_EXPORTER_OTLP_ENDPOINT

    sandbox = None
    if demo:
        from malipo.sandbox.demo import Sandbox  # the providers' fakes: only with --demo

        sandbox = Sandbox()
        settings = await sandbox.start(settings)
    app = App(settings)
    await app.start()
    # Everything built at start-up (modules, descriptors, connectors) leaves the collector's
    # generations: full collections, which paused 10k-stream fan-out for hundreds of ms,
    # then walk only what requests and streams allocate. (Here, not in App.start: a process
    # that starts many apps, like the test suite, would freeze its garbage.)
    gc.freeze()
    # Young collections every 10,000 net allocations rather than 700, and a full one 1,000
    # young ones apart rather than 100: 10,000 open streams are ~10^6 live objects, and a
    # full walk of them paused fan-out for 0.6 s several times a run (9 full collections,
    # 3.2 s, in a 10k-stream bench; none with these). Garbage in cycles waits longer, at
    # most a few young generations' worth.
    gc.set_threshold(10_000, 20, 50)
    if app.dev_key:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        key_file = settings.data_dir / "dev-api-key"
        key_file.write_text(app.dev_key + "\n")
        key_file.chmod(0o600)
    print(app.banner() + (sandbox.guide(app.grpc_address) if sandbox else ""), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, app.reload_keys)
    await stop.wait()
    print("draining in-flight calls and streams...", flush=True)
    await app.stop()
    if sandbox is not None:
        await sandbox.stop()
    if stop_tracing is not None:
        stop_tracing()  # flushes spans still batched
    return 0


async def _migrate(settings: Settings, *, status_only: bool) -> int:
    import asyncpg

    from malipo.store.migrations import migrate, status

    if not settings.database_url:
        print("malipo: error: malipo migrate needs DATABASE_URL", file=sys.stderr)
        return 2
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"malipo: error: cannot reach DATABASE_URL: {exc}", file=sys.stderr)
        return 2
    try:
        if status_only:
            for name, applied_at in await status(conn):
                print(f"{'applied ' + applied_at.isoformat() if applied_at else 'pending'}"
                      f"  {name}")
            return 0
        applied = await migrate(conn)
    finally:
        await conn.close()
    print("applied: " + (", ".join(applied) or "nothing (up to date)"))
    return 0


async def _demo(target: str, phone: str) -> int:
    """The README's tour: one payment through the simulator, watched until it settles."""
    import grpc

    from malipo.payments.v1 import money_pb2, payment_pb2, payment_service_pb2
    from malipo.payments.v1.payment_service_pb2_grpc import PaymentServiceStub

    key = os.environ.get("MALIPO_API_KEY", "")
    key_file = Path(os.environ.get("MALIPO_DATA_DIR", ".malipo")) / "dev-api-key"
    if not key and key_file.exists():
        key = key_file.read_text().strip()
    metadata = (("authorization", f"Bearer {key}"),)
    final = {payment_pb2.STATUS_SUCCEEDED, payment_pb2.STATUS_FAILED,
             payment_pb2.STATUS_CANCELLED, payment_pb2.STATUS_REVERSED}
    async with grpc.aio.insecure_channel(target) as channel:
        stub = PaymentServiceStub(channel)
        created = await stub.CreatePayment(payment_service_pb2.CreatePaymentRequest(
            idempotency_key=f"demo-{uuid.uuid4()}", provider="simulator",
            amount=money_pb2.Money(amount_minor=150000, currency="KES"),
            customer=payment_pb2.Customer(phone_number=phone), description="Malipo demo",
        ), metadata=metadata, timeout=10)
        p = created.payment
        print(f"created {p.id}: {payment_pb2.Status.Name(p.status)}")
        if p.status in final:
            return 0
        stream = stub.WatchStatus(payment_service_pb2.WatchStatusRequest(
            after_sequence=0, filter={"payment_id": p.id}), metadata=metadata, timeout=30)
        with contextlib.suppress(grpc.aio.AioRpcError):
            async for message in stream:
                if not message.HasField("event"):
                    continue
                e = message.event
                print(f"  #{e.sequence} {payment_pb2.Status.Name(e.old_status)} -> "
                      f"{payment_pb2.Status.Name(e.new_status)} {e.reason}".rstrip())
                if e.new_status == payment_pb2.STATUS_ACTION_REQUIRED:
                    print("  the customer must act (next_action); see ConfirmPayment")
                if e.new_status in final or e.new_status == payment_pb2.STATUS_ACTION_REQUIRED:
                    stream.cancel()
                    break
    return 0


if __name__ == "__main__":
    sys.exit(main())
