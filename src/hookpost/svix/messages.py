"""``/api/v1/app/{app_id}/msg``: Svix's messages, hookpost's events. A message's ``eventId``
is the event's idempotency key: a second message with it is a conflict, as in Svix. An
inline ``application`` is created first when no application has the path's id or uid."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost import ids, jsonvalue
from hookpost.access import Viewer
from hookpost.admin import tenants
from hookpost.admin.schemas.events import EventTypeName, IdempotencyKey
from hookpost.admin.schemas.fields import Channels, StorableDatetime
from hookpost.db import unstorable
from hookpost.db.models import Event, Tenant
from hookpost.errors import HookpostError, NotFound
from hookpost.ingest import events
from hookpost.ingest.intake import EventItem
from hookpost.state import AppState
from hookpost.svix.applications import ApplicationIn, application_for
from hookpost.svix.auth import SvixViewer
from hookpost.svix.deps import SessionDep, StateDep
from hookpost.svix.paging import PagingDep, page
from hookpost.svix.wire import ListResponse, SvixModel, SvixRoute

router = APIRouter(prefix="/api/v1/app/{app_id}/msg", route_class=SvixRoute, tags=["svix"])


class MessageIn(SvixModel):
    """A message, its fields held to the rules of the native API's event (``EventCreate``'s
    own types), so that one validation checks it."""

    event_type: EventTypeName
    # as EventCreate's: the intake finds what Postgres would refuse in a payload, with its place
    payload: dict[str, Any]
    event_id: IdempotencyKey | None = None
    channels: Channels | None = None
    deliver_at: StorableDatetime | None = None
    application: ApplicationIn | None = None


class MessageOut(SvixModel):
    id: str
    event_id: str | None
    event_type: str
    payload: dict[str, Any]
    channels: list[str] | None
    timestamp: datetime
    deliver_at: datetime | None = None


class DuplicateEventId(HookpostError):
    code = "idempotency_conflict"


def out(row: Event) -> MessageOut:
    return MessageOut(
        id=ids.encode(ids.Prefix.EVENT, row.id),
        event_id=row.idempotency_key,
        event_type=row.event_type,
        payload=row.body["data"],
        channels=row.channels,
        timestamp=row.created_at,
        deliver_at=row.deliver_at,
    )


async def find(session: AsyncSession, tenant: Tenant, ref: str) -> Event:
    """The message ``ref`` names: its id, or its ``eventId`` among the application's."""
    event_id = ids.decode(ids.Prefix.EVENT, ref)
    if event_id is not None:
        found = await events.get(session, event_id)
    elif unstorable.refusal(ref) is not None:  # no eventId holds it
        found = None
    else:
        found = await session.scalar(
            select(Event).where(Event.tenant_id == tenant.id, Event.idempotency_key == ref)
        )
    if found is None or found.tenant_id != tenant.id:
        raise NotFound("event", ref)
    return found


async def _application(
    state: AppState, viewer: Viewer, app_id: str, inline: ApplicationIn | None
) -> uuid.UUID:
    """The id of the application the path names, made from ``inline`` (committed, so that
    the intake's own connection sees it) when none has that id or uid."""
    async with state.sessions() as session, session.begin():
        return (await application_for(session, viewer, app_id, inline)).id


@router.post("", status_code=202, summary="Create a message", response_model=MessageOut)
async def create_message(
    app_id: str, body: MessageIn, state: StateDep, viewer: SvixViewer
) -> Response:
    """The hot path of the Svix API, as ``POST /v1/events`` is of the native one: the intake
    finds the application (by id or uid, cached) and no session is opened, unless an inline
    application may have to be made first."""
    tenant_ref = app_id
    if body.application is not None:
        tenant_id = await _application(state, viewer, app_id, body.application)
        tenant_ref = ids.encode(ids.Prefix.TENANT, tenant_id)
    item = EventItem(
        tenant_ref, body.event_type, body.payload, body.event_id, body.deliver_at, body.channels
    )
    emitted = await state.intake.emit_one(viewer, item)
    if not emitted.created:
        raise DuplicateEventId(f"A message with the eventId {body.event_id!r} exists")
    # written here, not re-validated by FastAPI: the payload is the one just checked, and its
    # numbers go back as they were written (jsonvalue)
    answer = {
        "id": ids.encode(ids.Prefix.EVENT, emitted.id),
        "eventId": emitted.idempotency_key,
        "eventType": emitted.event_type,
        "payload": body.payload,
        "channels": body.channels,
        "timestamp": emitted.created_at.isoformat(),
        "deliverAt": body.deliver_at.isoformat() if body.deliver_at else None,
    }
    return Response(jsonvalue.dumps(answer), status_code=202, media_type="application/json")


@router.get("", summary="List messages")
async def list_messages(
    app_id: str,
    session: SessionDep,
    viewer: SvixViewer,
    paging: PagingDep,
    event_types: Annotated[str | None, Query(max_length=4096)] = None,
    channel: Annotated[str | None, Query(max_length=128)] = None,
    before: datetime | None = None,
    after: datetime | None = None,
) -> ListResponse[MessageOut]:
    tenant = await tenants.visible(session, viewer, app_id)
    query = events.list_query(tenant.id, None)
    if event_types:  # the SDKs join a list with commas
        query = query.where(Event.event_type.in_(event_types.split(",")))
    if channel is not None:
        query = query.where(Event.channels.contains([channel]))
    if before is not None:
        query = query.where(Event.id < ids.floor(before))
    if after is not None:
        query = query.where(Event.id >= ids.floor(after))
    paged = await page(
        session,
        query,
        Event.id,
        paging,
        prefix=ids.Prefix.EVENT,
        default="descending",
    )
    return paged.answer([out(row) for row in paged.rows])


@router.get("/{msg_id}", summary="Get a message")
async def get_message(
    app_id: str, msg_id: str, session: SessionDep, viewer: SvixViewer
) -> MessageOut:
    tenant = await tenants.visible(session, viewer, app_id)
    return out(await find(session, tenant, msg_id))
