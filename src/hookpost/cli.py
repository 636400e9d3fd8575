"""The ``hookpost`` command: run the service, apply migrations, create API keys.

Every command uses ``HOOKPOST_DATABASE_URL`` when set, and otherwise starts the embedded
Postgres in ``HOOKPOST_DATA_DIR`` for as long as it runs.
"""

import asyncio
import contextlib
import signal
import sys
from collections.abc import Coroutine, Iterator
from typing import Annotated, Any, NoReturn

import prometheus_client
import typer
import uvicorn

from hookpost import __version__, cli_client, cli_endpoints
from hookpost import receiver as receiving
from hookpost.admin import api_keys, tenants
from hookpost.app import create_app
from hookpost.db import migrations
from hookpost.db.embedded import embedded_exists, embedded_postgres
from hookpost.db.engine import create_engine, session_factory, wait_for_database
from hookpost.delivery.worker import Worker
from hookpost.log import CLEAR_LINE, configure_logging
from hookpost.ops import retention
from hookpost.ops.events import OperationalEvents
from hookpost.runtime import settle_gc
from hookpost.settings import Settings

app = typer.Typer(
    help="hookpost: an outbound webhook dispatcher on Postgres.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"hookpost {__version__}")
        raise typer.Exit


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """hookpost: an outbound webhook dispatcher on Postgres."""


HostOption = Annotated[
    str | None,
    typer.Option("--host", help="Address to listen on (default: HOOKPOST_HOST, or 127.0.0.1)."),
]
PortOption = Annotated[
    int | None, typer.Option("--port", help="Port to listen on (default: HOOKPOST_PORT, or 8000).")
]


@contextlib.contextmanager
def _database(settings: Settings) -> Iterator[tuple[Settings, str]]:
    """``settings`` with a database URL, and that URL: the configured one, or the embedded
    Postgres's.

    SIGTERM is turned into SystemExit (as SIGINT is into KeyboardInterrupt), so that the
    embedded Postgres is stopped however the process is asked to end.
    """
    if settings.database_url:
        yield settings, settings.database_url
        return
    signal.signal(signal.SIGTERM, _exit_on_signal)
    data_dir = settings.data_dir.resolve()
    if embedded_exists(data_dir):
        typer.echo(f"No HOOKPOST_DATABASE_URL: using the embedded Postgres in {data_dir}")
    else:
        typer.secho(
            f"No HOOKPOST_DATABASE_URL: creating a new embedded Postgres in {data_dir} "
            "(HOOKPOST_DATA_DIR chooses another folder)",
            fg=typer.colors.YELLOW,
        )
    with embedded_postgres(data_dir) as url:
        yield settings.model_copy(update={"database_url": url}), url


def _fail(message: str) -> NoReturn:
    typer.secho(message, err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


async def _current_revision(settings: Settings, url: str) -> str | None:
    engine = create_engine(url, pool_size=2)
    try:
        await wait_for_database(engine, timeout_s=settings.db_connect_timeout_s)
        return await migrations.current_revision(engine)
    finally:
        await engine.dispose()


def _check_own_database(settings: Settings, url: str, *, migrated: bool, advice: str = "") -> None:
    """On a database of the user's own (HOOKPOST_DATABASE_URL), stop with what to do where
    serving would go wrong: no shared secret key (each process would generate its own and
    could not read the others' endpoint secrets), or a schema behind this version's (every
    request would fail)."""
    if settings.secret_key is None:
        _fail(
            "HOOKPOST_DATABASE_URL is set but HOOKPOST_SECRET_KEY is not: every process on one "
            "database must encrypt endpoint secrets with the same key. Make one with\n"
            '  python3 -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"\n'
            "and set it on every hookpost process."
        )
    if migrated:
        return
    current, head = asyncio.run(_current_revision(settings, url)), migrations.head_revision()
    if current != head:
        _fail(
            f"The database schema is at {current or 'no migration yet'}; this hookpost needs "
            f"{head}: run `hookpost migrate` first{advice}."
        )


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop (a dependency everywhere but Windows), else on asyncio."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def _configure_logging(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format)


async def _first_admin_key(settings: Settings, url: str) -> str | None:
    """A new admin key when neither the settings nor the database has one, else None."""
    if settings.admin_api_key is not None:
        return None
    engine = create_engine(url, pool_size=2)
    try:
        await wait_for_database(engine, timeout_s=settings.db_connect_timeout_s)
        async with session_factory(engine)() as session, session.begin():
            if await api_keys.has_admin_key(session):
                return None
            _, key = await api_keys.create(session, name="first admin key", tenant_id=None)
            return key
    finally:
        await engine.dispose()


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling: ``_serve`` handles the signals for
    the API and the workers together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve(
    settings: Settings,
    *,
    host: str | None,
    port: int | None,
    api: bool,
    workers: bool,
    metrics_port: int | None = None,
) -> None:
    """The API and/or a worker in this process until SIGINT or SIGTERM, then a graceful stop;
    ``metrics_port`` serves the Prometheus metrics once the signals are handled, so that a
    process seen up stops gracefully however soon it is asked to."""
    stop = asyncio.Event()
    server: _Server | None = None
    if api:
        host, port = host or settings.host, port or settings.port
        config = uvicorn.Config(
            create_app(settings),
            host=host,
            port=port,
            log_level=settings.log_level,
            log_config=None,  # uvicorn logs through hookpost's handlers (log.py)
            server_header=False,
            proxy_headers=False,  # the app honours them from trusted proxies only
        )
        server = _Server(config)
        typer.echo(
            f"hookpost {__version__}: console at http://{host}:{port}/, "
            f"API docs at http://{host}:{port}/docs"
        )

    def on_signal() -> None:
        stop.set()
        if server is not None:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    if metrics_port:
        prometheus_client.start_http_server(metrics_port, addr=settings.host)

    async def serve_api() -> None:
        assert server is not None
        try:
            await server.serve()
        finally:
            stop.set()

    parts = [serve_api()] if server is not None else []
    if workers:
        worker = Worker(settings, after_flush=OperationalEvents(settings))
        parts += [worker.run(stop), retention.keep_up(settings, stop)]
        if sys.stdout.isatty():
            parts.append(_status_line(worker, stop))
    settle_gc()  # the app and the worker are built: what lives now lives as long as we do
    await asyncio.gather(*parts)


async def _status_line(worker: Worker, stop: asyncio.Event) -> None:
    """In a terminal: a line, rewritten every two seconds, with the delivery rate."""
    last, interval = worker.delivered, 2.0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
        done = worker.delivered
        sys.stdout.write(
            f"{CLEAR_LINE}{done:,} attempts made, {(done - last) / interval:,.0f}/s, "
            f"{worker.in_flight} in flight"
        )
        sys.stdout.flush()
        last = done
    sys.stdout.write("\n")


@app.command()
def run(host: HostOption = None, port: PortOption = None) -> None:
    """Run hookpost: migrations, then the API (with its console at / and docs at /docs) and a
    delivery worker in one process.

    Uses the embedded Postgres unless HOOKPOST_DATABASE_URL is set. On first start it creates
    an admin API key and prints it once.
    """
    settings = Settings()
    _configure_logging(settings)
    if settings.database_url:
        _check_own_database(settings, settings.database_url, migrated=True)
    with _database(settings) as (settings, url):
        migrations.upgrade(url)
        key = asyncio.run(_first_admin_key(settings, url))
        if key is not None:
            typer.secho(f"Admin API key (shown once, store it now): {key}", fg=typer.colors.YELLOW)
        elif settings.admin_api_key is None:
            typer.echo(
                "The admin API key was shown on the first start; "
                "`hookpost create-api-key` makes another."
            )
        _run_loop(_serve(settings, host=host, port=port, api=True, workers=True))


@app.command()
def api(
    host: HostOption = None,
    port: PortOption = None,
    migrate: Annotated[
        bool, typer.Option(help="Apply migrations first (always done for the embedded Postgres).")
    ] = False,
) -> None:
    """Run the API only (no delivery workers)."""
    settings = Settings()
    _configure_logging(settings)
    if settings.database_url:
        if migrate:
            migrations.upgrade(settings.database_url)
        _check_own_database(
            settings,
            settings.database_url,
            migrated=migrate,
            advice=", or start the API with --migrate",
        )
    with _database(settings) as (settings, url):
        if not Settings().database_url:
            migrations.upgrade(url)
        _run_loop(_serve(settings, host=host, port=port, api=True, workers=False))


@app.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            help="Requests under way at once (default: HOOKPOST_WORKER_CONCURRENCY, or 512).",
            min=1,
        ),
    ] = None,
) -> None:
    """Run a delivery worker only: claim due deliveries, sign, send, retry, log every attempt.

    Run as many worker processes as you like against one database. SIGTERM or SIGINT stops
    claiming, lets requests under way finish (HOOKPOST_WORKER_GRACE_S) and releases the rest.
    """
    settings = Settings()
    if concurrency is not None:
        settings = settings.model_copy(update={"worker_concurrency": concurrency})
    _configure_logging(settings)
    if settings.database_url:
        _check_own_database(settings, settings.database_url, migrated=False)
    with _database(settings) as (settings, url):
        if not Settings().database_url:
            migrations.upgrade(url)
        serving = _serve(
            settings,
            host=None,
            port=None,
            api=False,
            workers=True,
            metrics_port=settings.metrics_port,
        )
        _run_loop(serving)


@app.command()
def migrate() -> None:
    """Apply every database migration up to the newest."""
    settings = Settings()
    with _database(settings) as (_, url):
        migrations.upgrade(url)
        typer.echo(f"Database schema at {migrations.head_revision()}")


async def _create_key(settings: Settings, url: str, name: str, tenant: str | None) -> str:
    engine = create_engine(url, pool_size=2)
    try:
        await wait_for_database(engine, timeout_s=settings.db_connect_timeout_s)
        async with session_factory(engine)() as session, session.begin():
            tenant_id = None
            if tenant is not None:
                found = await tenants.find(session, tenant)
                if found is None:
                    raise typer.BadParameter(f"no tenant {tenant!r}", param_hint="--tenant")
                tenant_id = found.id
            _, key = await api_keys.create(session, name=name, tenant_id=tenant_id)
            return key
    finally:
        await engine.dispose()


@app.command()
def receiver(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    secret: Annotated[
        str | None,
        typer.Option(help="The endpoint's whsec_ secret: each signature is checked with it."),
    ] = None,
    status: Annotated[int, typer.Option(min=100, max=599, help="The answer to give.")] = 204,
) -> None:
    """A webhook receiver for trying hookpost out: prints every request it gets (and whether
    its signature is right, given the endpoint's secret) and answers it."""
    typer.echo(f"Receiving webhooks at http://{host}:{port}/ (Ctrl-C stops)")
    receiving.serve(host, port, secret, status, lambda text: typer.echo(text))


@app.command("create-api-key")
def create_api_key(
    name: Annotated[str, typer.Option(help="What the key is for.")] = "cli",
    tenant: Annotated[
        str | None,
        typer.Option(help="Scope the key to this tenant (id or uid); an admin key if absent."),
    ] = None,
) -> None:
    """Create an API key directly in the database and print it (it is shown only once)."""
    settings = Settings()
    with _database(settings) as (settings, url):
        typer.echo(asyncio.run(_create_key(settings, url, name, tenant)))


for command in (
    cli_client.deliveries,
    cli_client.delivery,
    cli_client.resend,
    cli_client.recover,
    cli_client.rotate_secret,
    cli_client.emit,
):
    app.command()(command)
app.add_typer(cli_endpoints.app, name="endpoint")
