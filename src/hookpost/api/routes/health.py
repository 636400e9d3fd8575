"""``/healthz`` (the process answers) and ``/readyz`` (the database answers, schema at head)."""

from fastapi import APIRouter, Response
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError

from hookpost.api.deps import StateDep
from hookpost.db.migrations import current_revision, head_revision

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    detail: str | None = None


@router.get("/healthz", summary="Liveness")
async def healthz() -> Health:
    """Answers 200 while the process runs."""
    return Health(status="ok")


@router.get("/readyz", summary="Readiness", responses={503: {"model": Health}})
async def readyz(state: StateDep, response: Response) -> Health:
    """200 when the database answers and its schema is at the newest migration; 503 if not."""
    try:
        revision = await current_revision(state.engine)
    except (OSError, DBAPIError) as error:
        response.status_code = 503
        return Health(status="unavailable", detail=f"database: {type(error).__name__}")
    head = head_revision()
    if revision != head:
        response.status_code = 503
        return Health(status="unavailable", detail=f"schema at {revision}, need {head}")
    return Health(status="ok")
