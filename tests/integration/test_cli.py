"""The hookpost command, run as a real process."""

import asyncio
import http.server
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from cryptography.fernet import Fernet

from hookpost import __version__
from hookpost.db import migrations
from hookpost.db.engine import plain_dsn
from tests.conftest import ADMIN_KEY, LOCAL_NETWORKS
from tests.integration.live import HOOKPOST, free_port, start_run, wait_ready


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKPOST_")}
    return env | values


@pytest.mark.parametrize("command", ["run", "api", "migrate", "create-api-key"])
def test_help(command: str) -> None:
    result = subprocess.run(
        [*HOOKPOST, command, "--help"], capture_output=True, text=True, check=True
    )
    assert "Usage" in result.stdout
    assert len(result.stdout) > 200


def test_version() -> None:
    result = subprocess.run([*HOOKPOST, "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"hookpost {__version__}"


def test_migrate_and_create_api_key(database_url: str, tmp_path: Path) -> None:
    env = _env(HOOKPOST_DATABASE_URL=database_url, HOOKPOST_DATA_DIR=str(tmp_path))
    migrated = subprocess.run([*HOOKPOST, "migrate"], env=env, capture_output=True, text=True)
    assert migrated.returncode == 0, migrated.stderr
    assert "Database schema at" in migrated.stdout
    made = subprocess.run(
        [*HOOKPOST, "create-api-key", "--name", "ci"], env=env, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    assert re.fullmatch(r"hp_[\w-]{43}\n", made.stdout)
    missing = subprocess.run(
        [*HOOKPOST, "create-api-key", "--tenant", "nobody"], env=env, capture_output=True, text=True
    )
    assert missing.returncode != 0
    assert "no tenant" in missing.stderr


def _deliver_one_event(url: str, key: str) -> None:
    """Through the running service: set up a tenant and an endpoint, emit, and see the
    webhook arrive at a receiver on 127.0.0.1."""
    arrived: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            arrived.append(self.rfile.read(int(self.headers["content-length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    try:
        client = httpx.Client(base_url=url, headers={"authorization": f"Bearer {key}"})
        client.post("/v1/tenants", json={"name": "Acme", "uid": "acme"}).raise_for_status()
        client.post("/v1/event-types", json={"name": "user.signup"}).raise_for_status()
        client.post(
            "/v1/endpoints",
            json={
                "tenant_id": "acme",
                "url": f"http://127.0.0.1:{target.server_port}/hook",
                "event_types": ["*"],
            },
        ).raise_for_status()
        emitted = client.post(
            "/v1/events",
            json={"tenant_id": "acme", "event_type": "user.signup", "payload": {"a": 1}},
        )
        event_id = emitted.json()["id"]
        deadline = time.monotonic() + 20
        while not arrived and time.monotonic() < deadline:
            time.sleep(0.05)
        assert arrived, "the webhook did not arrive"
        assert event_id.encode() in arrived[0]
        _operate(url, key, client, event_id, len(arrived))
    finally:
        target.shutdown()


def _configure(hookpost: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """``hookpost endpoint``: create one by its uid with its routing and policy, show it,
    change it, test a sample event against it, and refuse bad options clearly."""
    made = hookpost(
        "endpoint", "create", "https://example.com/cli-hook", "--tenant", "acme",
        "--uid", "cli-hook", "--event-type", "*", "--filter", '*={"amount": {"$gt": 10}}',
        "--channel", "eu", "--policy", "retry_max_attempts=3", "--metadata", "team=ops",
        "--ordering-key", "customer", "--on-exhausted", "hold",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    for line in (
        "(cli-hook)",
        'receives * where {"amount":{"$gt":10}}',
        "channels eu",
        "policy retry_max_attempts = 3 (this endpoint)",
        "policy timeout_s = 15.0 (settings)",
        "metadata team = ops",
        "order a lane per customer; a delivery out of attempts: hold",
    ):
        assert line in made.stdout, made.stdout
    scoped = ("--tenant", "acme")
    shown = json.loads(hookpost("endpoint", "show", "cli-hook", *scoped, "--json").stdout)
    assert (shown["uid"], shown["channels"]) == ("cli-hook", ["eu"])
    changed = hookpost(
        "endpoint", "update", "cli-hook", *scoped, "--policy", "timeout_s=5", "--unordered"
    )
    assert changed.returncode == 0, changed.stderr
    assert "order none (unordered)" in changed.stdout
    assert "policy timeout_s = 5.0 (this endpoint)" in changed.stdout
    assert "policy retry_max_attempts = 20 (settings)" in changed.stdout

    def test(amount: int) -> subprocess.CompletedProcess[str]:
        return hookpost(
            "endpoint", "filter-test", "cli-hook", *scoped, "--event-type", "user.signup",
            "--payload", json.dumps({"amount": amount}), "--channel", "eu",
        )  # fmt: skip

    passed, refused = test(20), test(5)
    assert passed.returncode == 0, passed.stderr
    assert passed.stdout.startswith("delivered: ")
    assert refused.returncode == 3
    assert refused.stdout.startswith("not delivered: the filters")

    malformed = hookpost("endpoint", "update", "cli-hook", *scoped, "--policy", "nope")
    assert malformed.returncode == 2
    assert "is not NAME=VALUE" in malformed.stderr
    wrong = hookpost("endpoint", "update", "cli-hook", *scoped, "--filter", '*={"a": []}')
    assert wrong.returncode == 1
    assert "invalid_filter" in wrong.stderr
    emitted = hookpost(
        "emit", "user.signup", '{"amount": 20}', "--tenant", "acme", "--channel", "eu",
        "--deliver-at", "2026-01-01T00:00:00", "--idempotency-key", "cli-1",
    )  # fmt: skip
    assert emitted.returncode == 0, emitted.stderr
    assert re.fullmatch(r"evt_\w+: 2 deliveries\n", emitted.stdout)  # and the first endpoint's
    again = hookpost(
        "emit", "user.signup", '{"amount": 20}', "--tenant", "acme", "--idempotency-key", "cli-1"
    )
    assert "(a repeat: the first event)" in again.stdout
    assert hookpost("emit", "user.signup", "[1", "--tenant", "acme").returncode == 2
    refused = hookpost("emit", "nope.type", "{}", "--tenant", "acme")
    assert refused.returncode == 1
    assert "unknown_event_type" in refused.stderr
    unscoped = hookpost("endpoint", "show", "cli-hook")
    assert unscoped.returncode == 1
    assert "tenant_required" in unscoped.stderr


def _operate(url: str, key: str, client: httpx.Client, event_id: str, sent: int) -> None:
    """The operators' commands against the running API: list, resend, recover."""
    env = _env(HOOKPOST_API_URL=url, HOOKPOST_API_KEY=key)

    def hookpost(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*HOOKPOST, *args], env=env, capture_output=True, text=True)

    listed = hookpost("deliveries", "--tenant", "acme", "--status", "succeeded")
    assert listed.returncode == 0, listed.stderr
    [delivery] = client.get("/v1/deliveries", params={"event_id": event_id}).json()["data"]
    assert delivery["id"] in listed.stdout
    assert "succeeded" in listed.stdout
    assert delivery["tenant_id"] in listed.stdout
    endpoint_url = client.get(f"/v1/endpoints/{delivery['endpoint_id']}").json()["url"]
    assert endpoint_url in listed.stdout
    as_json = hookpost("deliveries", "--tenant", "acme", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["data"][0]["id"] == delivery["id"]
    wrong = hookpost("deliveries", "--status", "failing")
    assert wrong.returncode == 2
    assert "'failing' is not one of" in wrong.stderr
    assert "'succeeded'" in wrong.stderr

    one = hookpost("delivery", delivery["id"])
    assert one.returncode == 0, one.stderr
    assert f"{delivery['id']}: succeeded" in one.stdout
    assert endpoint_url in one.stdout
    one_json = json.loads(hookpost("delivery", delivery["id"], "--json").stdout)
    [attempt] = one_json["attempts"]
    assert f"│ {attempt['response_status']} " in one.stdout  # the attempt's answer

    resent = hookpost("resend", delivery["id"])
    assert resent.returncode == 0, resent.stderr
    assert f"{delivery['id']} queued" in resent.stdout
    assert json.loads(hookpost("resend", delivery["id"], "--json").stdout)["id"] == delivery["id"]
    recovered = hookpost("recover", delivery["endpoint_id"], "--since", "2026-01-01T00:00:00")
    assert recovered.returncode == 0, recovered.stderr
    assert "0 failed deliveries in the window" in recovered.stdout

    rotated = hookpost("rotate-secret", delivery["endpoint_id"], "--grace-period-s", "60")
    assert rotated.returncode == 0, rotated.stderr
    new_secret = rotated.stdout.strip()
    assert new_secret.startswith("whsec_")
    current = client.get(f"/v1/endpoints/{delivery['endpoint_id']}/secret").json()["key"]
    assert current == new_secret
    rotated_json = json.loads(
        hookpost(
            "rotate-secret", delivery["endpoint_id"], "--grace-period-s", "60", "--json"
        ).stdout
    )
    assert [s["key"] for s in rotated_json["secrets"]][1] == new_secret  # still signing

    _configure(hookpost)

    missing = hookpost("resend", "dlv_nope")
    assert missing.returncode == 1
    assert "delivery_not_found" in missing.stderr
    unauthorised = subprocess.run(
        [*HOOKPOST, "deliveries"],
        env=env | {"HOOKPOST_API_KEY": "hp_wrong"},
        capture_output=True,
        text=True,
    )
    assert unauthorised.returncode == 1
    assert "unauthorized" in unauthorised.stderr


def test_run_on_the_embedded_postgres(tmp_path: Path) -> None:
    """`hookpost run` with nothing configured: embedded Postgres, migrations, first admin key
    printed once, /docs served; SIGTERM stops it and its Postgres."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _env(HOOKPOST_DATA_DIR=str(tmp_path), HOOKPOST_ALLOWED_NETWORKS=LOCAL_NETWORKS)
    process = start_run(port, env)
    try:
        wait_ready(url, process)
        assert httpx.get(f"{url}/docs").status_code == 200
        postgres = [
            p
            for p in psutil.process_iter(["cmdline"])
            if str(tmp_path) in " ".join(p.info["cmdline"] or [])
        ]
        assert postgres
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    key = re.search(r"Admin API key \(shown once, store it now\): (hp_[\w-]+)", output)
    assert key, output
    assert f"http://127.0.0.1:{port}/docs" in output
    # where the data is, loudly when it is new; one line a migration; no library noise
    assert f"creating a new embedded Postgres in {tmp_path.resolve()}" in output
    assert "schema upgraded to 0001" in output
    assert "The initial schema" not in output  # the migrations' docstrings
    assert "Context impl" not in output
    assert "XDG_RUNTIME_DIR" not in output
    psutil.wait_procs(postgres, timeout=10)
    assert not any(p.is_running() for p in postgres)

    # second start: the key exists, so none is printed, and the first key still works
    process = start_run(port, env)
    try:
        wait_ready(url, process)
        _deliver_one_event(url, key.group(1))
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert "Admin API key" not in output
    assert ADMIN_KEY not in output
    assert f"using the embedded Postgres in {tmp_path.resolve()}" in output
    assert "`hookpost create-api-key` makes another" in output


def test_a_worker_serves_its_metrics_and_stops_on_sigterm(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = _env(
        HOOKPOST_DATABASE_URL=database_url,
        HOOKPOST_DATA_DIR=str(tmp_path),
        HOOKPOST_METRICS_PORT=str(port),
        HOOKPOST_SECRET_KEY=Fernet.generate_key().decode(),
    )
    process = subprocess.Popen(
        [*HOOKPOST, "worker", "--concurrency", "4"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "no metrics served"
                time.sleep(0.2)
        assert answer.status_code == 200
        assert "hookpost_worker_in_flight" in answer.text
        assert "hookpost_attempt_duration_seconds" in answer.text
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert re.search(r"worker \S+ stopped", output), output


def _set_revision(database_url: str, revision: str) -> None:
    async def update() -> None:
        connection = await asyncpg.connect(plain_dsn(database_url))
        try:
            await connection.execute("UPDATE alembic_version SET version_num = $1", revision)
        finally:
            await connection.close()

    asyncio.run(update())


def test_serving_your_own_database_needs_its_key_and_its_schema(
    database_url: str, tmp_path: Path
) -> None:
    env = _env(HOOKPOST_DATABASE_URL=database_url, HOOKPOST_DATA_DIR=str(tmp_path))
    for command in ("run", "api", "worker"):
        refused = subprocess.run(
            [*HOOKPOST, command], env=env, capture_output=True, text=True, timeout=60
        )
        assert refused.returncode == 2, command
        assert "HOOKPOST_SECRET_KEY is not" in refused.stderr
        assert "Fernet.generate_key()" in refused.stderr

    env["HOOKPOST_SECRET_KEY"] = Fernet.generate_key().decode()
    head = migrations.head_revision()
    assert head is not None
    _set_revision(database_url, "0001")
    try:
        for command, advice in (
            ("api", "run `hookpost migrate` first, or start the API with --migrate."),
            ("worker", "run `hookpost migrate` first."),
        ):
            refused = subprocess.run(
                [*HOOKPOST, command], env=env, capture_output=True, text=True, timeout=60
            )
            assert refused.returncode == 2, command
            assert f"The database schema is at 0001; this hookpost needs {head}" in refused.stderr
            assert advice in refused.stderr
    finally:
        _set_revision(database_url, head)
