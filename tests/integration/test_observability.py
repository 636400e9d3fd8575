"""Observability and deployment: /metrics against the attempts table, readiness with the
database down and up, structured logs, the status line, and the compose file."""

import asyncio
import contextlib
import io
import json
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
import yaml
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from opentelemetry import trace
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from hookpost import cli
from hookpost.app import create_app
from hookpost.log import (
    CLEAR_LINE,
    JsonFormatter,
    TerminalHandler,
    TextFormatter,
    configure_logging,
)
from hookpost.settings import Settings
from tests.conftest import ADMIN_KEY
from tests.integration.delivery_helpers import eventually, running_worker
from tests.integration.helpers import create_endpoint, create_event_type, create_tenant, ok
from tests.receiver import Reply, receiver

ROOT = Path(__file__).resolve().parents[2]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def _scrape(client: AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return _samples(response.text)


def _delta(after: dict[Any, float], before: dict[Any, float], name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_metrics_agree_with_the_attempts_table(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    before = await _scrape(admin)
    script = lambda n, r: Reply(status=500) if r.path == "/bad" else Reply()  # noqa: E731
    async with receiver(script) as target:
        await create_tenant(admin, uid="acme")
        await create_event_type(admin, "invoice.paid")
        await create_endpoint(admin, "acme", url=target.url + "/good", event_types=["*"])
        await create_endpoint(admin, "acme", url=target.url + "/bad", event_types=["*"])
        for _ in range(3):
            body = {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {}}
            ok(await admin.post("/v1/events", json=body), 202)
        ok(await admin.post("/v1/events", json=body | {"idempotency_key": "k"}), 202)
        ok(await admin.post("/v1/events", json=body | {"idempotency_key": "k"}), 200)
        async with running_worker(settings, retry_max_attempts=2):

            async def finished() -> bool:
                left = await db.fetchval(
                    "SELECT count(*) FROM deliveries WHERE status IN ('pending', 'in_flight')"
                )
                return bool(left == 0)

            await eventually(finished)
    after = await _scrape(admin)

    rows = await db.fetch(
        "SELECT response_status, error_kind, count(*) AS n FROM attempts "
        "GROUP BY response_status, error_kind"
    )
    successes = sum(r["n"] for r in rows if r["error_kind"] is None)
    failures = sum(r["n"] for r in rows if r["error_kind"] == "http_status")
    assert (successes, failures) == (4, 8)
    assert _delta(after, before, "hookpost_attempts_total", outcome="success", error_kind="") == 4
    assert (
        _delta(
            after, before, "hookpost_attempts_total", outcome="failure", error_kind="http_status"
        )
        == 8
    )
    assert _delta(after, before, "hookpost_attempt_duration_seconds_count") == 12
    assert _delta(after, before, "hookpost_deliveries_finished_total", status="succeeded") == 4
    assert _delta(after, before, "hookpost_deliveries_finished_total", status="failed") == 4
    assert _delta(after, before, "hookpost_events_ingested_total", result="created") == 4
    assert _delta(after, before, "hookpost_events_ingested_total", result="duplicate") == 1
    assert _delta(after, before, "hookpost_deliveries_queued_total") == 8
    assert after[("hookpost_deliveries", (("status", "pending"),))] == 0
    assert after[("hookpost_queue_due", ())] == 0
    assert after[("hookpost_worker_in_flight", ())] == 0

    await db.execute(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = now() - interval '1 minute'"
    )
    await db.execute("UPDATE endpoints SET enabled = false")
    queued = await _scrape(admin)
    assert queued[("hookpost_deliveries", (("status", "pending"),))] == 8
    assert queued[("hookpost_queue_due", ())] == 8
    assert queued[("hookpost_queue_oldest_due_age_seconds", ())] >= 59
    assert queued[("hookpost_endpoints_disabled", ())] == 2


class _Proxy:
    """A TCP proxy in front of the test database that can be cut and restored."""

    def __init__(self, target: tuple[str, int] | str) -> None:
        self.target = target
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if isinstance(self.target, str):
            return await asyncio.open_unix_connection(self.target)
        return await asyncio.open_connection(*self.target)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await self._connect()
        self.links |= {writer, upstream_writer}
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def up(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        return int(self.server.sockets[0].getsockname()[1])

    async def down(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.links:
            writer.close()
        self.links.clear()
        await self.server.wait_closed()


def _database_target(database_url: str) -> tuple[tuple[str, int] | str, str]:
    """Where the test database listens (host and port, or a socket), and its name."""
    url = make_url(database_url)
    socket_dir = parse_qs(urlsplit(database_url).query).get("host", [None])[0]
    if socket_dir:
        return f"{socket_dir}/.s.PGSQL.{url.port or 5432}", str(url.database)
    return (url.host or "127.0.0.1", url.port or 5432), str(url.database)


@contextlib.asynccontextmanager
async def _app_through(
    proxy_port: int, settings: Settings, database: str
) -> AsyncIterator[FastAPI]:
    url = f"postgresql://postgres@127.0.0.1:{proxy_port}/{database}"
    app = create_app(settings.model_copy(update={"database_url": url, "db_connect_timeout_s": 5}))
    async with app.router.lifespan_context(app):
        yield app


async def test_readiness_follows_the_database(settings: Settings, db: asyncpg.Connection) -> None:
    assert settings.database_url
    target, database = _database_target(settings.database_url)
    proxy = _Proxy(target)
    port = await proxy.up()
    async with (
        _app_through(port, settings, database) as app,
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        assert (await client.get("/readyz")).json() == {"status": "ok", "detail": None}
        await proxy.down()
        down = await client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["status"] == "unavailable"
        assert (await client.get("/healthz")).status_code == 200  # alive all the same
        assert (await client.get("/metrics")).status_code == 200
        await proxy.up(port)

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await eventually(ready)
        await proxy.down()


async def test_no_request_answers_500_while_the_database_is_gone(
    settings: Settings, db: asyncpg.Connection
) -> None:
    assert settings.database_url
    target, database = _database_target(settings.database_url)
    proxy = _Proxy(target)
    port = await proxy.up()
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    async with (
        _app_through(port, settings, database) as app,
        AsyncClient(
            transport=ASGITransport(app=app), base_url="http://test", headers=headers
        ) as client,
    ):
        await create_tenant(client, uid="acme")
        await create_event_type(client, "invoice.paid")
        event = {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {}}
        await proxy.down()  # the pools' connections are cut under them
        answers = [
            await client.post("/v1/events", json=event),  # the raw asyncpg pool
            await client.post("/v1/events/batch", json={"events": [event]}),
            await client.get("/v1/tenants"),  # SQLAlchemy
            await client.get("/v1/deliveries"),
        ]
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.json()["code"] == "database_unavailable"
            assert answer.headers["retry-after"] == "1"


async def test_readiness_probes_log_nothing(
    anonymous: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            assert (await anonymous.get("/readyz")).status_code == 200
    server = [record for record in caplog.records if not record.name.startswith("httpx")]
    assert [record.getMessage() for record in server if record.levelno >= logging.INFO] == []


async def test_readiness_wants_the_newest_schema(
    app: FastAPI, anonymous: AsyncClient, db: asyncpg.Connection
) -> None:
    head = await db.fetchval("SELECT version_num FROM alembic_version")
    await db.execute("UPDATE alembic_version SET version_num = '0001'")
    try:
        answer = await anonymous.get("/readyz")
        assert answer.status_code == 503
        assert f"need {head}" in answer.json()["detail"]
    finally:
        await db.execute("UPDATE alembic_version SET version_num = $1", head)


def test_json_logs_carry_the_ids() -> None:
    record = logging.makeLogRecord(
        {
            "name": "hookpost.delivery.worker",
            "levelname": "INFO",
            "msg": "attempt %d failed",
            "args": (2,),
            "delivery_id": "dlv_x",
            "endpoint_id": "ep_y",
            "tenant_id": "ten_z",
        }
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "attempt 2 failed"
    assert entry["level"] == "info"
    assert (entry["delivery_id"], entry["endpoint_id"], entry["tenant_id"]) == (
        "dlv_x",
        "ep_y",
        "ten_z",
    )
    text = TextFormatter().format(record)
    assert "attempt 2 failed" in text
    assert "delivery_id=dlv_x" in text


async def test_the_status_line_shows_the_delivery_rate(monkeypatch: Any) -> None:
    class FakeWorker:
        delivered = 0
        in_flight = 3

    worker = FakeWorker()
    output = io.StringIO()
    monkeypatch.setattr(cli.sys, "stdout", output)
    stop = asyncio.Event()
    task = asyncio.create_task(cli._status_line(worker, stop))  # type: ignore[arg-type]
    await asyncio.sleep(0.1)  # the line starts counting from 0
    worker.delivered = 500
    await asyncio.sleep(2.2)
    stop.set()
    await task
    assert "500 attempts made, 250/s, 3 in flight" in output.getvalue()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, its handlers and level put back after the test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield root
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_log_lines_never_run_into_the_status_line(
    monkeypatch: Any, root_logger: logging.Logger
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    configure_logging("info", "auto")
    [handler] = root_logger.handlers
    assert isinstance(handler, TerminalHandler)
    terminal.write("500 attempts made, 250/s, 3 in flight")  # the status line, unfinished
    logging.getLogger("hookpost.test").warning("a log line")
    shown = terminal.getvalue()
    # a terminal shows what follows the last erase: the log line alone on its line
    assert shown.split(CLEAR_LINE)[-1].rstrip("\n").endswith("hookpost.test: a log line")
    assert shown.endswith("\n")

    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    configure_logging("info", "text")
    assert not isinstance(root_logger.handlers[0], TerminalHandler)


def test_the_compose_file_brings_up_a_working_system() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", "api", "worker"}
    for name in ("postgres", "api", "worker"):
        assert services[name]["healthcheck"]["test"], name
    assert services["migrate"]["command"] == ["hookpost", "migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
        assert services[name]["environment"]["HOOKPOST_DATABASE_URL"].startswith("postgresql://")
        environment = services[name]["environment"]
        # no published secret: compose refuses to start without the user's own (":?")
        for secret in ("HOOKPOST_SECRET_KEY", "HOOKPOST_ADMIN_API_KEY"):
            assert environment[secret].startswith(f"${{{secret}:?set {secret} "), secret
            assert "python3 -c" in environment[secret]
    assert services["api"]["command"] == ["hookpost", "api"]
    assert services["worker"]["command"] == ["hookpost", "worker"]
    assert services["worker"]["environment"]["HOOKPOST_METRICS_PORT"] == "9100"
    assert "8000:8000" in services["api"]["ports"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY migrations" in dockerfile
    assert "pip install" in dockerfile


class _RecordingTracerProvider(trace.TracerProvider):
    """An OpenTelemetry tracer provider that notes the name of every span started."""

    def __init__(self) -> None:
        self.spans: list[str] = []

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        spans = self.spans

        class Tracer(trace.NoOpTracer):
            def start_span(self, name: str, *args: Any, **kwargs: Any) -> trace.Span:
                spans.append(name)
                return super().start_span(name, *args, **kwargs)

        return Tracer()


async def test_fastapi_telemetry_only_with_hookpost_otel(
    settings: Settings, db: asyncpg.Connection, monkeypatch: Any
) -> None:
    """FastAPI's native OpenTelemetry costs a check on every request, so it is off unless
    HOOKPOST_OTEL is set; then the globally configured provider sees the requests."""
    provider = _RecordingTracerProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    for otel in (False, True):
        app = create_app(settings.model_copy(update={"otel": otel}))
        async with (
            app.router.lifespan_context(app),
            AsyncClient(
                transport=ASGITransport(app=app),
                base_url="http://test",
                headers={"authorization": f"Bearer {ADMIN_KEY}"},
            ) as client,
        ):
            ok(await client.get("/v1/tenants"))
        assert bool(provider.spans) is otel, provider.spans


def test_probes_leave_no_access_log_lines(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging("info", "text")
    root_logger.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    access = logging.getLogger("uvicorn.access")
    line = '%s - "%s %s HTTP/%s" %d'
    for path in ("/healthz", "/readyz", "/metrics", "/v1/events"):
        access.info(line, "127.0.0.1:5000", "GET", path, "1.1", 200)
    logged = stream.getvalue()
    assert "/v1/events" in logged
    assert not any(probe in logged for probe in ("/healthz", "/readyz", "/metrics"))
