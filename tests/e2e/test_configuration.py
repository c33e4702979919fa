# pyright: basic
"""What a new operator hits first, through the real `malipo` command: one clear line and exit
code 2 for each configuration mistake, checked before anything starts; flags over environment
over the TOML file; `--version`, `check-config` and `migrate --status`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from malipo.metrics import version
from tests.conftest import with_database

MALIPO = str(Path(sys.executable).with_name("malipo"))


def run(*args: str, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("MALIPO_") and k != "DATABASE_URL"}
    return subprocess.run([MALIPO, *args], env={**clean, **(env or {})}, cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "malipo.toml"
    path.write_text(text)
    return str(path)


def test_version_names_the_installed_distribution() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"malipo {version()}"
    assert version()[0].isdigit()


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("malipo: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(("case", "env", "flags", "expected"), [
    ("malformed DATABASE_URL", {"DATABASE_URL": "mysql://db/x", "MALIPO_API_KEYS": "a=b"}, [],
     "DATABASE_URL is not a PostgreSQL URL"),
    ("DATABASE_URL with a bad port", {"DATABASE_URL": "postgresql://h:99999999/x",
                                      "MALIPO_API_KEYS": "a=b"}, [],
     "DATABASE_URL is not a PostgreSQL URL"),
    ("unparsable gRPC listen flag", {}, ["--grpc-listen", "localhost"],
     "'localhost' is not host:port"),
    ("unparsable HTTP listen env", {"MALIPO_HTTP_LISTEN": "127.0.0.1:http"}, [],
     "MALIPO_HTTP_LISTEN '127.0.0.1:http' is not host:port"),
    ("a number that is not one", {"MALIPO_HEARTBEAT_S": "soon"}, [], "heartbeat_s"),
    ("an unknown log format", {"MALIPO_LOG_FORMAT": "xml"}, [], "MALIPO_LOG_FORMAT"),
    ("idempotency keys kept under a day", {"MALIPO_IDEMPOTENCY_KEY_RETENTION_DAYS": "0.5"}, [],
     "MALIPO_IDEMPOTENCY_KEY_RETENTION_DAYS must be at least 1 day"),
    ("a malformed key list", {"MALIPO_API_KEYS": "just-a-key"}, [], "tenant=key"),
    ("real database, no keys", {"DATABASE_URL": "postgresql://127.0.0.1:1/x"}, [],
     "no API keys"),
])
def test_a_bad_setting_is_one_line_and_exit_2_before_anything_starts(
        tmp_path: Path, case: str, env: dict[str, str], flags: list[str],
        expected: str) -> None:
    data = tmp_path / "data"
    result = run("serve", *flags, env={"MALIPO_DATA_DIR": str(data), **env}, cwd=tmp_path)
    assert_one_line_error(result, expected)
    assert not (data / "postgres").exists(), f"{case}: PostgreSQL started anyway"


def test_a_busy_port_is_found_before_postgresql_starts(tmp_path: Path, busy_port: int) -> None:
    data = tmp_path / "data"
    result = run("serve", "--http-listen", f"127.0.0.1:{busy_port}",
                 env={"MALIPO_DATA_DIR": str(data)}, cwd=tmp_path)
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{busy_port}", "in use")
    assert not (data / "postgres").exists()


@pytest.mark.parametrize(("text", "expected"), [
    ("grpc_listen = [", "is not valid TOML"),
    ('http_lisen = "127.0.0.1:1"\n', "unknown key 'http_lisen'; did you mean 'http_listen'?"),
    ('[[accounts]]\nprovider = "mpesa"\nname = "x"\n', "unknown provider 'mpesa'"),
    ('[[accounts]]\nprovider = "simulator"\nsetings = {}\n', "accounts.0.setings"),
    ('[[accounts]]\nprovider = "kwik"\nname = "za"\n',
     "provider account kwik/za needs setting 'api_key'"),
    ('[[accounts]]\nprovider = "paykassma"\nname = "ke"\n'
     '[accounts.settings]\nsecret_key = "s3cr3t-never-shown"\nis_test = "ture"\n',
     "settings.is_test: true or false"),
])
def test_a_bad_config_file_is_one_line_and_exit_2(tmp_path: Path, text: str,
                                                   expected: str) -> None:
    result = run("check-config", env={"MALIPO_CONFIG": toml(tmp_path, text)})
    assert_one_line_error(result, expected)
    result = run("serve", env={"MALIPO_CONFIG": toml(tmp_path, text),
                               "MALIPO_DATA_DIR": str(tmp_path / "data")})
    assert_one_line_error(result, expected)
    assert "s3cr3t" not in result.stderr


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    result = run("check-config", env={"MALIPO_CONFIG": str(tmp_path / "nope.toml")})
    assert_one_line_error(result, "nope.toml", "No such file")


def test_flags_beat_environment_which_beats_the_file(tmp_path: Path) -> None:
    path = toml(tmp_path, 'grpc_listen = "127.0.0.1:1001"\nhttp_listen = "127.0.0.1:2001"\n'
                          'heartbeat_s = 3.0\n')
    env = {"MALIPO_CONFIG": path, "MALIPO_GRPC_LISTEN": "127.0.0.1:1002",
           "MALIPO_HTTP_LISTEN": "127.0.0.1:2002"}
    shown = json.loads(run("check-config", "--http-listen", "127.0.0.1:2003", env=env).stdout)
    assert shown["grpc_listen"] == "127.0.0.1:1002"    # environment over file
    assert shown["http_listen"] == "127.0.0.1:2003"    # flag over environment
    assert shown["heartbeat_s"] == 3.0                 # file over default
    assert json.loads(run("check-config").stdout)["heartbeat_s"] == 15.0


def test_check_config_prints_the_effective_config_with_secrets_masked(tmp_path: Path) -> None:
    path = toml(tmp_path, """
[api_keys]
shop = ["shop-old-key-123", "shop-new-key-456"]

[[accounts]]
provider = "gateway"
name = "ke"
[accounts.settings]
base_url = "https://gateway.example.com"
public_id = "pub-1"
secret_key = "gateway-secret-789"
merchant_id = "m-1"
""")
    result = run("check-config", env={
        "MALIPO_CONFIG": path, "MALIPO_API_KEYS": "ops=ops-key-000",
        "MALIPO_OPERATOR_KEYS": "alice=operator-key-321",
        "MALIPO_NATS_URL": "nats://malipo:nats-password-2@nats.internal:4222",
        "MALIPO_WEBHOOKS": '[{"tenant": "shop", "url": "https://hooks.example.com/m", '
                           '"secret": "whsec_c2VjcmV0LXdlYmhvb2sta2V5LTEyMzQ1Njc4"}]',
        "DATABASE_URL": "postgresql://malipo:db-password-1@db.internal:5432/malipo"})
    assert result.returncode == 0, result.stderr
    for secret in ("shop-old-key-123", "shop-new-key-456", "ops-key-000", "gateway-secret-789",
                   "db-password-1", "operator-key-321", "nats-password-2",
                   "c2VjcmV0LXdlYmhvb2sta2V5LTEyMzQ1Njc4"):
        assert secret not in result.stdout
    shown = json.loads(result.stdout)
    # The environment's MALIPO_API_KEYS replaces the file's [api_keys] (env over file).
    assert shown["api_keys"] == ["ops=***"]
    assert shown["database_url"] == "postgresql://malipo:***@db.internal:5432/malipo"
    assert shown["operator_keys"] == ["alice=***"]
    assert shown["webhooks"][0]["url"] == "https://hooks.example.com/m"
    (account,) = shown["accounts"]
    assert account["settings"]["base_url"] == "https://gateway.example.com"
    assert account["settings"]["secret_key"] == "***"
    only_file = json.loads(run("check-config", env={"MALIPO_CONFIG": path}).stdout)
    assert only_file["api_keys"] == ["shop=***", "shop=***"]


async def test_migrate_status_lists_pending_then_applied(server_dsn: str) -> None:
    name = "t_" + uuid.uuid4().hex[:16]
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        env = {"DATABASE_URL": with_database(server_dsn, name)}
        before = run("migrate", "--status", env=env)
        assert before.returncode == 0, before.stderr
        rows = before.stdout.strip().splitlines()
        assert rows and all(r.startswith("pending  0") for r in rows)
        assert run("migrate", env=env).returncode == 0
        after = run("migrate", "--status", env=env).stdout.strip().splitlines()
        assert [r.split()[-1] for r in after] == [r.split()[-1] for r in rows]
        assert all(r.startswith("applied 20") for r in after)
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def test_migrate_without_a_database_is_one_line() -> None:
    assert_one_line_error(run("migrate", "--status"), "needs DATABASE_URL")
    assert_one_line_error(run("migrate", env={"DATABASE_URL": "postgresql://127.0.0.1:1/x"}),
                          "cannot reach DATABASE_URL")
