"""``/api/v1/event-type``: Svix's event types, hookpost's event types. Svix versions a type's
schemas (``{"1": {...}}``); hookpost keeps one, the highest version sent, and answers it as
version ``"1"``."""

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response

from hookpost.admin import event_types
from hookpost.admin.schemas.event_types import EventTypeCreate, EventTypeUpdate
from hookpost.db.models import EventType
from hookpost.errors import NotFound
from hookpost.state import AppState
from hookpost.svix.auth import SvixViewer
from hookpost.svix.deps import SessionDep, StateDep
from hookpost.svix.paging import PagingDep, page
from hookpost.svix.wire import Invalid, ListResponse, SvixModel, SvixRoute, checked

router = APIRouter(prefix="/api/v1/event-type", route_class=SvixRoute, tags=["svix"])


class EventTypeIn(SvixModel):
    name: str
    description: str = ""
    archived: bool = False
    deprecated: bool = False
    schemas: dict[str, Any] | None = None
    group_name: str | None = None


class EventTypePatch(SvixModel):
    description: str | None = None
    archived: bool | None = None
    deprecated: bool | None = None
    schemas: dict[str, Any] | None = None
    group_name: str | None = None


class EventTypeOut(SvixModel):
    name: str
    description: str
    archived: bool
    deprecated: bool
    schemas: dict[str, Any] | None
    group_name: str | None
    created_at: datetime
    updated_at: datetime


def out(row: EventType) -> EventTypeOut:
    return EventTypeOut(
        name=row.name,
        description=row.description,
        archived=row.archived,
        deprecated=row.deprecated,
        schemas={"1": row.schema} if row.schema is not None else None,
        group_name=row.group_name,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _one_schema(schemas: dict[str, Any] | None) -> Any:
    """The schema of the highest version (versions are numbers as text)."""
    if not schemas:
        return None
    try:
        return schemas[max(schemas, key=lambda version: float(version))]
    except ValueError:
        loc = ["body", "schemas"]
        raise Invalid(
            [{"loc": loc, "msg": 'versions are numbers, such as "1"', "type": "value_error"}]
        ) from None


async def _check_schema(state: AppState, schema: Any) -> None:
    if schema is None:
        return
    error = await state.validator.schema_error(schema)
    if error is not None:
        loc = ["body", "schemas"]
        raise Invalid(
            [{"loc": loc, "msg": f"the schema cannot be used: {error}", "type": "value_error"}]
        )


async def _find(session: SessionDep, name: str) -> EventType:
    found = await event_types.find(session, name)
    if found is None:
        raise NotFound("event_type", name)
    return found


@router.get("", summary="List event types")
async def list_event_types(
    session: SessionDep, viewer: SvixViewer, paging: PagingDep, include_archived: bool = False
) -> ListResponse[EventTypeOut]:
    paged = await page(
        session,
        event_types.list_query(include_archived=include_archived),
        EventType.name,
        paging,
        prefix=None,
        default="ascending",
    )
    return paged.answer([out(row) for row in paged.rows])


async def _create(session: SessionDep, state: AppState, body: EventTypeIn) -> EventType:
    schema = _one_schema(body.schemas)
    made = checked(
        EventTypeCreate,
        {"name": body.name, "description": body.description, "schema": schema},
        {"schema": "schemas"},
    )
    await _check_schema(state, made.schema_)
    try:
        row = await event_types.create(
            session, name=made.name, description=made.description, schema=made.schema_
        )
    except event_types.NameTaken:
        raise event_types.NameTaken(f"An event type named {body.name!r} exists") from None
    return await event_types.update(
        session,
        row,
        {"archived": body.archived, "deprecated": body.deprecated, "group_name": body.group_name},
    )


@router.post("", status_code=201, summary="Create an event type")
async def create_event_type(
    body: EventTypeIn, session: SessionDep, state: StateDep, viewer: SvixViewer
) -> EventTypeOut:
    viewer.require_operator()
    row = await _create(session, state, body)
    state.event_types.forget()
    return out(row)


@router.get("/{event_type_name}", summary="Get an event type")
async def get_event_type(
    event_type_name: str, session: SessionDep, viewer: SvixViewer
) -> EventTypeOut:
    return out(await _find(session, event_type_name))


async def _change(
    session: SessionDep, state: AppState, row: EventType, changes: dict[str, Any]
) -> EventType:
    kept: dict[str, Any] = {k: changes.pop(k) for k in ("deprecated", "group_name") if k in changes}
    if "schemas" in changes:
        changes["schema"] = _one_schema(changes.pop("schemas"))
    update = checked(EventTypeUpdate, changes, {"schema": "schemas"}).changes()
    if "schema" in update:
        await _check_schema(state, update["schema"])
    row = await event_types.update(session, row, {**update, **kept})
    state.event_types.forget()
    return row


@router.put("/{event_type_name}", summary="Update an event type, or create it")
async def update_event_type(
    event_type_name: str,
    body: EventTypeIn,
    session: SessionDep,
    state: StateDep,
    viewer: SvixViewer,
    response: Response,
) -> EventTypeOut:
    viewer.require_operator()
    found = await event_types.find(session, event_type_name)
    if found is None:
        response.status_code = 201
        row = await _create(session, state, body.model_copy(update={"name": event_type_name}))
        state.event_types.forget()
        return out(row)
    changes = body.model_dump(
        include={"description", "archived", "deprecated", "schemas", "group_name"}
    )
    return out(await _change(session, state, found, changes))


@router.patch("/{event_type_name}", summary="Patch an event type")
async def patch_event_type(
    event_type_name: str,
    body: EventTypePatch,
    session: SessionDep,
    state: StateDep,
    viewer: SvixViewer,
) -> EventTypeOut:
    viewer.require_operator()
    found = await _find(session, event_type_name)
    return out(await _change(session, state, found, body.model_dump(exclude_unset=True)))


@router.delete("/{event_type_name}", status_code=204, summary="Delete an event type")
async def delete_event_type(
    event_type_name: str, session: SessionDep, state: StateDep, viewer: SvixViewer
) -> Response:
    """Svix archives a type on delete; hookpost does the same (``expunge`` is not kept)."""
    viewer.require_operator()
    found = await _find(session, event_type_name)
    await event_types.update(session, found, {"archived": True})
    state.event_types.forget()
    return Response(status_code=204)
