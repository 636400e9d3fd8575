"""What the Svix API's routes take besides the viewer: the app's state, and the request's
database session (one per request, committed when the route returns)."""

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost.state import AppState, app_state, request_session


async def get_state(request: Request) -> AppState:
    return app_state(request)


StateDep = Annotated[AppState, Depends(get_state)]
SessionDep = Annotated[AsyncSession, Depends(request_session, scope="function")]
