"""Svix's message attempts, hookpost's attempt log: by endpoint, by message, one of them; the
messages an endpoint was sent and the endpoints a message went to, each with its delivery's
state; and resending a message to an endpoint. Svix's ``status``: 0 success, 1 pending,
2 fail, 3 sending, 4 canceled; ``triggerType``: 0 scheduled, 1 manual."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy import Select, false, select
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost import ids
from hookpost.access import Viewer
from hookpost.admin import tenants
from hookpost.db.models import Attempt, Delivery, Endpoint, Event
from hookpost.errors import NotFound
from hookpost.ingest import events
from hookpost.ops import recovery
from hookpost.svix import endpoints as svix_endpoints
from hookpost.svix import messages
from hookpost.svix.auth import SvixViewer
from hookpost.svix.deps import SessionDep
from hookpost.svix.paging import Paging, PagingDep, page
from hookpost.svix.wire import ListResponse, SvixModel, SvixRoute

router = APIRouter(prefix="/api/v1/app/{app_id}", route_class=SvixRoute, tags=["svix"])

# a delivery's state as Svix's message status
DELIVERY_STATUS = {
    "succeeded": 0,
    "pending": 1,
    "waiting": 1,
    "failed": 2,
    "in_flight": 3,
    "cancelled": 4,
}
STATUS_TEXT = {0: "success", 1: "pending", 2: "fail", 3: "sending", 4: "canceled"}


class MessageAttemptOut(SvixModel):
    id: str
    msg_id: str
    endpoint_id: str
    url: str
    response: str
    response_status_code: int
    response_duration_ms: int
    status: int
    status_text: str
    trigger_type: int
    timestamp: datetime


class EndpointMessageOut(messages.MessageOut):
    status: int
    status_text: str
    next_attempt: datetime | None


class MessageEndpointOut(svix_endpoints.EndpointOut):
    status: int
    status_text: str
    next_attempt: datetime | None


def _attempt_out(attempt: Attempt, event_id: uuid.UUID, url: str) -> MessageAttemptOut:
    status = 0 if attempt.error_kind is None else 2
    return MessageAttemptOut(
        id=ids.encode(ids.Prefix.ATTEMPT, attempt.id),
        msg_id=ids.encode(ids.Prefix.EVENT, event_id),
        endpoint_id=ids.encode(ids.Prefix.ENDPOINT, attempt.endpoint_id),
        url=url,
        response=attempt.response_body or attempt.error_message or "",
        response_status_code=attempt.response_status or 0,
        response_duration_ms=attempt.duration_ms,
        status=status,
        status_text=STATUS_TEXT[status],
        trigger_type=1 if attempt.trigger == "manual" else 0,
        timestamp=attempt.started_at,
    )


def _next_attempt(delivery: Delivery) -> datetime | None:
    return delivery.next_attempt_at if delivery.status in ("pending", "in_flight") else None


async def _attempts_page(
    session: AsyncSession, query: Select[Any], paging: Paging
) -> ListResponse[MessageAttemptOut]:
    paged = await page(
        session,
        query,
        Attempt.id,
        paging,
        prefix=ids.Prefix.ATTEMPT,
        default="descending",
    )
    deliveries = {
        row.id: row
        for row in await session.scalars(
            select(Delivery).where(Delivery.id.in_({row.delivery_id for row in paged.rows}))
        )
    }
    urls = {
        row.id: row.url
        for row in await session.scalars(
            select(Endpoint).where(Endpoint.id.in_({row.endpoint_id for row in paged.rows}))
        )
    }
    data = [
        _attempt_out(row, deliveries[row.delivery_id].event_id, urls.get(row.endpoint_id, ""))
        for row in paged.rows
    ]
    return paged.answer(data)


async def _message(session: AsyncSession, viewer: Viewer, app_id: str, msg_id: str) -> Event:
    return await messages.find(session, await tenants.visible(session, viewer, app_id), msg_id)


def _status_filter(status: int | None) -> list[str] | None:
    if status is None:
        return None
    return [name for name, value in DELIVERY_STATUS.items() if value == status]


@router.get("/attempt/endpoint/{endpoint_id}", summary="List attempts by endpoint")
async def list_by_endpoint(
    app_id: str,
    endpoint_id: str,
    session: SessionDep,
    viewer: SvixViewer,
    paging: PagingDep,
    status: Annotated[int | None, Query(ge=0, le=4)] = None,
) -> ListResponse[MessageAttemptOut]:
    endpoint = await svix_endpoints.visible_endpoint(session, viewer, app_id, endpoint_id)
    query = select(Attempt).where(Attempt.endpoint_id == endpoint.id)
    if status is not None:  # an attempt has ended: it succeeded (0) or failed (2), never else
        failed = Attempt.error_kind.is_not(None)
        query = query.where({0: ~failed, 2: failed}.get(status, false()))
    return await _attempts_page(session, query, paging)


@router.get("/attempt/msg/{msg_id}", summary="List attempts by message")
async def list_by_message(
    app_id: str,
    msg_id: str,
    session: SessionDep,
    viewer: SvixViewer,
    paging: PagingDep,
    endpoint_id: Annotated[str | None, Query(max_length=300)] = None,
) -> ListResponse[MessageAttemptOut]:
    event = await _message(session, viewer, app_id, msg_id)
    delivery_ids = select(Delivery.id).where(Delivery.event_id == event.id)
    if endpoint_id is not None:
        endpoint = await svix_endpoints.visible_endpoint(session, viewer, app_id, endpoint_id)
        delivery_ids = delivery_ids.where(Delivery.endpoint_id == endpoint.id)
    query = select(Attempt).where(Attempt.delivery_id.in_(delivery_ids))
    return await _attempts_page(session, query, paging)


@router.get("/msg/{msg_id}/attempt/{attempt_id}", summary="Get an attempt")
async def get_attempt(
    app_id: str, msg_id: str, attempt_id: str, session: SessionDep, viewer: SvixViewer
) -> MessageAttemptOut:
    event = await _message(session, viewer, app_id, msg_id)
    found = None
    decoded = ids.decode(ids.Prefix.ATTEMPT, attempt_id)
    if decoded is not None:
        found = await session.scalar(
            select(Attempt)
            .join(Delivery, Delivery.id == Attempt.delivery_id)
            .where(Attempt.id == decoded, Delivery.event_id == event.id)
        )
    if found is None:
        raise NotFound("attempt", attempt_id)
    endpoint = await session.get(Endpoint, found.endpoint_id)
    return _attempt_out(found, event.id, endpoint.url if endpoint else "")


@router.get("/endpoint/{endpoint_id}/msg", summary="List the messages sent to an endpoint")
async def list_attempted_messages(
    app_id: str,
    endpoint_id: str,
    session: SessionDep,
    viewer: SvixViewer,
    paging: PagingDep,
    status: Annotated[int | None, Query(ge=0, le=4)] = None,
) -> ListResponse[EndpointMessageOut]:
    endpoint = await svix_endpoints.visible_endpoint(session, viewer, app_id, endpoint_id)
    query = select(Delivery).where(Delivery.endpoint_id == endpoint.id)
    if (states := _status_filter(status)) is not None:
        query = query.where(Delivery.status.in_(states))
    paged = await page(
        session,
        query,
        Delivery.id,
        paging,
        prefix=ids.Prefix.DELIVERY,
        default="descending",
    )
    found = {
        row.id: row
        for row in await session.scalars(
            select(Event).where(Event.id.in_({row.event_id for row in paged.rows}))
        )
    }
    data = []
    for delivery in paged.rows:
        status_of = DELIVERY_STATUS[delivery.status]
        message = messages.out(found[delivery.event_id])
        data.append(
            EndpointMessageOut(
                **message.model_dump(),
                status=status_of,
                status_text=STATUS_TEXT[status_of],
                next_attempt=_next_attempt(delivery),
            )
        )
    return paged.answer(data)


@router.get("/msg/{msg_id}/endpoint", summary="List the endpoints a message went to")
async def list_attempted_destinations(
    app_id: str, msg_id: str, session: SessionDep, viewer: SvixViewer, paging: PagingDep
) -> ListResponse[MessageEndpointOut]:
    event = await _message(session, viewer, app_id, msg_id)
    found = (await events.deliveries_of(session, [event.id]))[event.id]
    by_endpoint = {delivery.endpoint_id: delivery for delivery in found}
    rows = list(await session.scalars(select(Endpoint).where(Endpoint.id.in_(set(by_endpoint)))))
    data = []
    for endpoint in await svix_endpoints.out(session, rows):
        delivery = by_endpoint[ids.decode(ids.Prefix.ENDPOINT, endpoint.id)]  # type: ignore[index]
        status_of = DELIVERY_STATUS[delivery.status]
        data.append(
            MessageEndpointOut(
                **endpoint.model_dump(),
                status=status_of,
                status_text=STATUS_TEXT[status_of],
                next_attempt=_next_attempt(delivery),
            )
        )
    return ListResponse(data=data, iterator=None, prev_iterator=None, done=True)


@router.post(
    "/msg/{msg_id}/endpoint/{endpoint_id}/resend",
    status_code=202,
    summary="Resend a message to an endpoint",
)
async def resend(
    app_id: str, msg_id: str, endpoint_id: str, session: SessionDep, viewer: SvixViewer
) -> JSONResponse:
    event = await _message(session, viewer, app_id, msg_id)
    endpoint = await svix_endpoints.visible_endpoint(session, viewer, app_id, endpoint_id)
    viewer.require_change()
    delivery = await session.scalar(
        select(Delivery).where(Delivery.event_id == event.id, Delivery.endpoint_id == endpoint.id)
    )
    if delivery is None:
        raise NotFound("delivery", f"{msg_id} to {endpoint_id}")
    await recovery.resend(session, delivery, endpoint)
    return JSONResponse({}, status_code=202)  # the SDKs read an empty object
