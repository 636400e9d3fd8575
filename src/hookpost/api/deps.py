"""Dependencies shared by the routers: the app state, the request's session, the caller's
principal (bearer auth) and pagination parameters, as ``Annotated`` aliases."""

import hmac
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hookpost.admin import api_keys
from hookpost.api.errors import Problem
from hookpost.cache import TtlCache
from hookpost.encryption import SecretBox
from hookpost.ingest.emit import EventTypeCache
from hookpost.ingest.intake import Intake
from hookpost.ingest.validation import Validator
from hookpost.settings import Settings


@dataclass(frozen=True)
class AppState:
    """What the app holds for its lifetime; built in the app's lifespan. ``pool`` serves the
    hot paths (authentication, ingest) with hand-written SQL and no ORM."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    pool: asyncpg.Pool
    secret_box: SecretBox
    keys: "KeyCache"
    event_types: EventTypeCache
    validator: Validator  # schemas and payloads, in child processes under a time bound
    intake: Intake  # events in


def app_state(request: Request) -> AppState:
    """The app's state, for a dependency or a route that takes the request itself."""
    state: AppState = request.app.state.hookpost
    return state


async def get_state(request: Request) -> AppState:
    return app_state(request)


StateDep = Annotated[AppState, Depends(get_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    """One session per request: committed once when the route returns, rolled back on error."""
    async with state.sessions() as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


@dataclass(frozen=True)
class Principal:
    """Who is calling: an admin key (``tenant_id`` None) or a key scoped to one tenant."""

    key_id: uuid.UUID | None
    tenant_id: uuid.UUID | None

    @property
    def is_admin(self) -> bool:
        return self.tenant_id is None

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Problem(403, "admin_only", "This action needs an admin API key")

    def can_see(self, tenant_id: uuid.UUID) -> bool:
        return self.tenant_id is None or self.tenant_id == tenant_id


bearer = HTTPBearer(
    auto_error=False,
    description="An API key: `Authorization: Bearer hp_...`. Admin keys see every tenant; "
    "tenant keys see only their own.",
)


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


# API keys already checked, so that a busy client does not cost a query per request.
KeyCache = TtlCache[bytes, "Principal"]


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The principal behind the bearer key; 401 when the key is missing or unknown. The app's
    state comes from the request, not from StateDep: FastAPI solves a dependency's own
    dependencies on every request, cached or not, and every route authenticates."""
    state = app_state(request)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("Send an API key: Authorization: Bearer <key>")
    key = credentials.credentials
    configured = state.settings.admin_api_key
    if configured is not None and hmac.compare_digest(
        key.encode(), configured.get_secret_value().encode()
    ):
        return Principal(key_id=None, tenant_id=None)
    key_hash = api_keys.hash_key(key)
    principal = state.keys.get(key_hash)
    if principal is None:
        row = await state.pool.fetchrow(api_keys.FIND_BY_HASH, key_hash)
        if row is None:
            raise _unauthorized("Unknown API key")
        principal = Principal(key_id=row["id"], tenant_id=row["tenant_id"])
        state.keys.put(key_hash, principal)
    return principal


AuthDep = Annotated[Principal, Depends(authenticate)]


@dataclass(frozen=True)
class PageParams:
    limit: int
    cursor: str | None


async def page_params(
    limit: Annotated[int, Query(ge=1, le=500, description="How many items, 1 to 500.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=64, description="`next_cursor` of the previous page.")
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


PageDep = Annotated[PageParams, Depends(page_params)]
