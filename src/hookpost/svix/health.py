"""``/api/v1/health``: the Svix SDKs' probe; it answers once the database does."""

from fastapi import APIRouter, Response
from sqlalchemy import text

from hookpost.svix.deps import SessionDep
from hookpost.svix.wire import SvixRoute

router = APIRouter(prefix="/api/v1/health", route_class=SvixRoute, tags=["svix"])


@router.get("", status_code=204, summary="Health")
async def health(session: SessionDep) -> Response:
    await session.execute(text("SELECT 1"))
    return Response(status_code=204)
