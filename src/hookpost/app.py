"""The composition root: ``create_app`` builds the one FastAPI application, its lifetime's
state (``state.AppState``: the engine, the pools, the intake) and the four faces on it, the
REST API, the Svix API, the operator's console and the tenants' portal, none of which
imports another."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI

from hookpost import __version__, console, portal
from hookpost.api.install import DESCRIPTION, TAGS, install_api
from hookpost.api.routes import events as api_events
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
from hookpost.proxies import TrustedProxies
from hookpost.settings import Settings
from hookpost.state import AppState, KeyCache
from hookpost.svix import messages as svix_messages
from hookpost.svix.install import install_svix


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
    install_api(app, settings)
    install_svix(app)
    _events_first(app)
    app.add_middleware(TrustedProxies, trusted=settings.forwarded_allow_ips)
    console.install(app)
    portal.install(app)
    return app


def _events_first(app: FastAPI) -> None:
    """Put the routes events arrive by, the native API's and the Svix API's, before all
    others: Starlette tries an app's routes in order, and FastAPI passes over an included
    router by matching each of its routes (5 to 14 us a router, measured), which a route late
    in the list pays for every router before it."""
    first = (api_events.router, svix_messages.router)
    app.router.routes.sort(key=lambda route: getattr(route, "original_router", None) not in first)
