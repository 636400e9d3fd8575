"""The FastAPI application: built by ``create_app`` around one database engine."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI

from hookpost import __version__
from hookpost.api.deps import AppState, KeyCache
from hookpost.api.docs import install_docs
from hookpost.api.errors import install_error_handlers
from hookpost.api.limits import BodySizeLimit
from hookpost.api.openapi import install_openapi
from hookpost.api.routes import (
    api_keys,
    deliveries,
    endpoints,
    event_types,
    events,
    health,
    tenants,
)
from hookpost.console.pages import install_console
from hookpost.db.engine import (
    create_engine,
    keep_session_state,
    plain_dsn,
    session_factory,
    wait_for_database,
)
from hookpost.encryption import load_secret_box
from hookpost.ingest.emit import EventTypeCache
from hookpost.ingest.intake import Intake
from hookpost.ingest.validation import Validator
from hookpost.settings import Settings

DESCRIPTION = """
hookpost delivers your product's events to your customers' webhook endpoints: signed with the
[Standard Webhooks](https://www.standardwebhooks.com/) scheme, retried with exponential backoff,
and with every attempt logged.

Press **Authorize**, paste an API key (`hp_...`), and every route below can be tried from
here. The operator console is at [`/`](/).

* **tenants**: your customers. Name them by hookpost's id or by your own `uid`.
* **event types**: the kinds of event you emit, optionally with a JSON Schema.
* **endpoints**: your customers' URLs, their signing secrets and their subscriptions.
* **api keys**: admin keys see everything; tenant keys see one tenant.
* **events**: emit them (one, or batches of up to 1000); read them back with their deliveries.
* **delivery log**: every delivery and attempt; resend one, or recover an endpoint's failures.
"""

TAGS = [
    {"name": "events", "description": "Emit events; read them back with their deliveries."},
    {
        "name": "delivery log",
        "description": "Every delivery and attempt, filtered; resend one delivery.",
    },
    {"name": "tenants", "description": "The customers of your product."},
    {"name": "event types", "description": "The kinds of event, with optional payload schemas."},
    {"name": "endpoints", "description": "Receivers' URLs, secrets and subscriptions."},
    {"name": "api keys", "description": "Keys for this API, admin or tenant-scoped."},
    {"name": "health", "description": "Liveness and readiness probes."},
]


def create_app(settings: Settings) -> FastAPI:
    """The API on the database at ``settings.database_url`` (which must be set)."""
    if not settings.database_url:
        raise ValueError("create_app needs settings.database_url")
    database_url = settings.database_url

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # HOOKPOST_DB_POOL_SIZE is the process's budget: half for the hot paths' pool
        # (authentication, ingest), the rest for the ORM's (admin and log queries)
        hot = settings.db_pool_size // 2
        engine = create_engine(database_url, pool_size=settings.db_pool_size - hot)
        await wait_for_database(engine, timeout_s=settings.db_connect_timeout_s)
        pool = await asyncpg.create_pool(
            plain_dsn(database_url), min_size=1, max_size=hot, reset=keep_session_state
        )
        event_types = EventTypeCache()
        validator = Validator(
            timeout_s=settings.validation_timeout_s, processes=settings.validation_processes
        )
        app.state.hookpost = AppState(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            pool=pool,
            secret_box=load_secret_box(settings),
            keys=KeyCache(),
            event_types=event_types,
            validator=validator,
            intake=(
                intake := Intake(
                    pool,
                    types=event_types,
                    validator=validator,
                    max_payload_bytes=settings.max_payload_bytes,
                    max_delay_s=settings.event_retention_days * 86400,
                )
            ),
        )
        try:
            yield
        finally:
            await validator.close()
            await intake.close()
            await pool.close()
            await engine.dispose()

    app = FastAPI(
        title="hookpost",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        docs_url=None,  # served by install_docs, from files shipped with hookpost
        redoc_url=None,
        telemetry=None if settings.otel else {"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    install_openapi(app)
    install_docs(app)
    install_console(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    for module in (events, deliveries, tenants, event_types, endpoints, api_keys, health):
        app.include_router(module.router)
    return app
