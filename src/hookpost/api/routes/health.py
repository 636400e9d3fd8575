"""``/healthz`` (the process answers), ``/readyz`` (the database answers, schema at head) and
``/metrics`` (Prometheus; behind ``HOOKPOST_METRICS_API_KEY`` when it is set)."""

import hmac
from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from hookpost.api.deps import AppState, StateDep
from hookpost.api.errors import Problem, problem_responses
from hookpost.api.json_body import StrictJSONRoute
from hookpost.db.engine import driver_connection_of
from hookpost.db.migrations import current_revision, head_revision
from hookpost.ops.metrics import exposition, read_queue_figures

router = APIRouter(route_class=StrictJSONRoute, tags=["health"])


class Health(BaseModel):
    status: str
    detail: str | None = None


@router.get("/healthz", summary="Liveness")
async def healthz() -> Health:
    """Answers 200 while the process runs."""
    return Health(status="ok")


async def _revision(engine: AsyncEngine) -> str | None:
    """The database's revision, asked again once on a fresh connection when the pooled one
    turns out broken: after a database restart the pool still holds connections whose server
    side is gone, and the first probe must not call a database that is back unready."""
    try:
        return await current_revision(engine)
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
    # the pool dropped that connection and every one as old as it: this one is new
    return await current_revision(engine)


@router.get("/readyz", summary="Readiness", responses={503: {"model": Health}})
async def readyz(state: StateDep, response: Response) -> Health:
    """200 when the database answers and its schema is at the newest migration; 503 if not."""
    try:
        revision = await _revision(state.engine)
    except (OSError, DBAPIError) as error:
        response.status_code = 503
        return Health(status="unavailable", detail=f"database: {type(error).__name__}")
    head = head_revision()
    if revision != head:
        response.status_code = 503
        return Health(status="unavailable", detail=f"schema at {revision}, need {head}")
    return Health(status="ok")


def _check_metrics_key(state: AppState, authorization: str | None) -> None:
    """401 unless the request carries the metrics key, when one is set."""
    required = state.settings.metrics_api_key
    if required is None:
        return
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        detail = "Send the metrics key: Authorization: Bearer <HOOKPOST_METRICS_API_KEY>"
    elif not hmac.compare_digest(token.strip().encode(), required.get_secret_value().encode()):
        detail = "This is not the metrics key (HOOKPOST_METRICS_API_KEY)"
    else:
        return
    raise Problem("unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {}}, "description": "The text format"},
        **problem_responses(401),
    },
)
async def metrics(
    state: StateDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Attempts by outcome and error kind, attempt latency, deliveries by state, queue depth
    and the age of the oldest due delivery, requests in flight, ingest counts, disabled
    endpoints. With `hookpost run`, the worker's figures are here too. When
    `HOOKPOST_METRICS_API_KEY` is set, send it as a bearer token."""
    _check_metrics_key(state, authorization)
    try:
        async with state.engine.connect() as connection:
            await read_queue_figures(await driver_connection_of(connection))
    except (OSError, DBAPIError):
        pass  # the process's own figures still answer; /readyz tells about the database
    body, content_type = exposition()
    return Response(content=body, media_type=content_type)
