"""Dependencies shared by the routers: the app state, the request's session, the caller's
viewer (bearer auth) and pagination parameters, as ``Annotated`` aliases."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost.access import Viewer
from hookpost.api.errors import Problem
from hookpost.state import AppState, app_state, request_session


async def get_state(request: Request) -> AppState:
    return app_state(request)


StateDep = Annotated[AppState, Depends(get_state)]


SessionDep = Annotated[AsyncSession, Depends(request_session, scope="function")]


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
    viewer = await state.viewer_of(credentials.credentials)
    if viewer is None:
        raise _unauthorized("Unknown API key")
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
