"""``/v1/event-types``: the kinds of event the product emits."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost import ids
from hookpost.admin import event_types
from hookpost.admin.schemas.event_types import EventTypeCreate, EventTypeUpdate
from hookpost.admin.schemas.fields import StorableText
from hookpost.api.deps import AppState, AuthDep, PageDep, SessionDep, StateDep
from hookpost.api.errors import FieldError, Problem, not_found, problem_responses
from hookpost.api.json_body import StrictJSONRoute
from hookpost.api.pagination import paginate
from hookpost.api.schemas.common import Page
from hookpost.api.schemas.event_types import EventTypeOut
from hookpost.db.models import EventType
from hookpost.ingest.validation import ValidationUnavailable

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/event-types",
    tags=["event types"],
    responses=problem_responses(401),
)

NamePath = Annotated[StorableText, Path(max_length=255, examples=["invoice.paid"])]


async def _check_schema(state: AppState, schema: dict[str, Any] | None) -> None:
    if schema is None:
        return
    try:
        error = await state.validator.schema_error(schema)
    except ValidationUnavailable as unavailable:
        raise Problem(
            "validation_unavailable", f"Schemas cannot be checked now: {unavailable}"
        ) from None
    if error is not None:
        raise Problem(
            "invalid_schema",
            f"The schema cannot be used: {error}",
            errors=[FieldError(loc=["body", "schema"], message=error, type="invalid_schema")],
        )


async def _find(session: AsyncSession, name: str) -> EventType:
    event_type = await event_types.find(session, name)
    if event_type is None:
        raise not_found("event_type", name)
    return event_type


@router.post(
    "",
    status_code=201,
    summary="Create an event type",
    responses=problem_responses(403, 409, 422, 503),
)
async def create_event_type(
    body: EventTypeCreate, session: SessionDep, state: StateDep, viewer: AuthDep
) -> EventTypeOut:
    """Declare a kind of event. With a `schema`, every payload emitted for it is validated.
    Admin keys only."""
    viewer.require_operator()
    await _check_schema(state, body.schema_)
    try:
        event_type = await event_types.create(
            session, name=body.name, description=body.description, schema=body.schema_
        )
    except event_types.NameTaken:
        raise Problem("event_type_exists", f"Event type {body.name!r} exists") from None
    state.event_types.forget()  # a type deleted and created again under its name
    return EventTypeOut.model_validate(event_type)


@router.get("", summary="List event types", responses=problem_responses(422))
async def list_event_types(
    session: SessionDep,
    viewer: AuthDep,
    page: PageDep,
    include_archived: Annotated[bool, Query(description="Also list archived types.")] = False,
) -> Page[EventTypeOut]:
    """Every event type, newest first."""
    query = event_types.list_query(include_archived=include_archived)
    rows, cursor = await paginate(session, query, EventType.id, ids.Prefix.EVENT_TYPE, page)
    return Page(data=[EventTypeOut.model_validate(row) for row in rows], next_cursor=cursor)


@router.get("/{name}", summary="Get an event type", responses=problem_responses(404))
async def get_event_type(name: NamePath, session: SessionDep, viewer: AuthDep) -> EventTypeOut:
    """One event type by name."""
    return EventTypeOut.model_validate(await _find(session, name))


@router.patch(
    "/{name}", summary="Update an event type", responses=problem_responses(403, 404, 422, 503)
)
async def update_event_type(
    name: NamePath,
    body: EventTypeUpdate,
    session: SessionDep,
    state: StateDep,
    viewer: AuthDep,
) -> EventTypeOut:
    """Change the description or the schema, or archive the type (archived types take no new
    events). Admin keys only."""
    viewer.require_operator()
    event_type = await _find(session, name)
    changes = body.changes()
    if "schema" in changes:
        await _check_schema(state, changes["schema"])
    updated = await event_types.update(session, event_type, changes)
    state.event_types.forget()  # emitting checks the new schema or the archive at once
    return EventTypeOut.model_validate(updated)


@router.delete(
    "/{name}",
    status_code=204,
    summary="Delete an event type",
    responses=problem_responses(403, 404),
)
async def delete_event_type(
    name: NamePath, session: SessionDep, state: StateDep, viewer: AuthDep
) -> Response:
    """Remove an event type. Events already emitted keep their type name. Prefer archiving
    (`PATCH` with `archived: true`) to keep the type's description. Admin keys only."""
    viewer.require_operator()
    await event_types.remove(session, await _find(session, name))
    state.event_types.forget()
    return Response(status_code=204)
