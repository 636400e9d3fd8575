"""Dependencies shared by the routers: the app state, the request's session, the caller's
viewer (bearer auth) and pagination parameters, as ``Annotated`` aliases."""

import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost.access import Viewer
from hookpost.admin import api_keys
from hookpost.api.errors import Problem
from hookpost.state import AppState, app_state


async def get_state(request: Request) -> AppState:
    return app_state(request)


StateDep = Annotated[AppState, Depends(get_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    """One session per request: committed once when the route returns, rolled back on error."""
    async with state.sessions() as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


bearer = HTTPBearer(
    auto_error=False,
    description="An API key: `Authorization: Bearer hp_...`. Admin keys see every tenant; "
    "tenant keys see only their own.",
)


def _unauthorized(detail: str) -> Problem:
    return Problem("unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Viewer:
    """The viewer behind the bearer key; 401 when the key is missing or unknown. The app's
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
        return Viewer(tenant_id=None)
    key_hash = api_keys.hash_key(key)
    viewer = state.keys.get(key_hash)
    if viewer is None:
        row = await state.pool.fetchrow(api_keys.FIND_BY_HASH, key_hash)
        if row is None:
            raise _unauthorized("Unknown API key")
        viewer = Viewer(tenant_id=row["tenant_id"], key_id=row["id"])
        state.keys.put(key_hash, viewer)
    return viewer


AuthDep = Annotated[Viewer, Depends(authenticate)]


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
