"""``/v1/deliveries`` and ``/v1/attempts``: the delivery log, and resending one delivery."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost import ids
from hookpost.access import Viewer
from hookpost.admin.schemas.fields import StorableDatetime, StorableText, TenantRef
from hookpost.api.deps import AuthDep, PageDep, SessionDep
from hookpost.api.errors import Problem, problem_responses
from hookpost.api.json_body import StrictJSONRoute
from hookpost.api.pagination import paginate
from hookpost.api.schemas.common import Page
from hookpost.api.schemas.deliveries import (
    AttemptOut,
    DeliveryDetail,
    DeliveryEndpoint,
    DeliveryEvent,
    DeliveryOut,
)
from hookpost.api.scoping import endpoint_for, tenant_id_for
from hookpost.db.models import Attempt, Delivery, DeliveryStatus
from hookpost.ops import logs, recovery

router = APIRouter(
    route_class=StrictJSONRoute, tags=["delivery log"], responses=problem_responses(401)
)

Since = Annotated[StorableDatetime | None, Query(description="Created at or after (ISO 8601).")]
Until = Annotated[StorableDatetime | None, Query(description="Created before (ISO 8601).")]
IdFilter = Annotated[StorableText | None, Query(max_length=64)]
EndpointFilter = Annotated[
    StorableText | None,
    Query(
        max_length=255,
        description="An endpoint id (`ep_...`) or uid (with an admin key, with `tenant_id`).",
    ),
]


def _id_filter(prefix: ids.Prefix, name: str, value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    parsed = ids.decode(prefix, value)
    if parsed is None:
        raise Problem("invalid_id", f"{name}: {value!r} is not a {prefix}_ id")
    return parsed


async def _endpoint_filter(
    session: AsyncSession, viewer: Viewer, value: str | None, tenant_ref: str | None
) -> uuid.UUID | None:
    """The endpoint a filter names: an id as it is, or a uid found among the endpoints of
    the tenant the request names (or a tenant key's own)."""
    if value is None:
        return None
    if (parsed := ids.decode(ids.Prefix.ENDPOINT, value)) is not None:
        return parsed
    return (await endpoint_for(session, viewer, value, tenant_ref)).id


async def _delivery_for(session: AsyncSession, viewer: Viewer, ref: str) -> Delivery:
    return await logs.visible_delivery(session, viewer, ref)


@router.get("/v1/deliveries", summary="List deliveries", responses=problem_responses(404, 422))
async def list_deliveries(
    session: SessionDep,
    viewer: AuthDep,
    page: PageDep,
    tenant_id: Annotated[TenantRef | None, Query()] = None,
    endpoint_id: EndpointFilter = None,
    event_id: IdFilter = None,
    event_type: Annotated[StorableText | None, Query(max_length=255)] = None,
    status: Annotated[DeliveryStatus | None, Query()] = None,
    since: Since = None,
    until: Until = None,
) -> Page[DeliveryOut]:
    """The delivery log, newest first: "did customer X get event Y, and if not, why?" Every
    filter is optional and they combine."""
    where = logs.DeliveryFilter(
        tenant_id=await tenant_id_for(session, viewer, tenant_id),
        endpoint_id=await _endpoint_filter(session, viewer, endpoint_id, tenant_id),
        event_id=_id_filter(ids.Prefix.EVENT, "event_id", event_id),
        event_type=event_type,
        status=status,
        since=since,
        until=until,
    )
    query = logs.deliveries_query(where)
    rows, cursor = await paginate(session, query, Delivery.id, ids.Prefix.DELIVERY, page)
    return Page(data=[DeliveryOut.model_validate(row) for row in rows], next_cursor=cursor)


@router.get(
    "/v1/deliveries/{delivery_id}", summary="Get a delivery", responses=problem_responses(404)
)
async def get_delivery(delivery_id: str, session: SessionDep, viewer: AuthDep) -> DeliveryDetail:
    """One delivery with its event, its endpoint, its state and every attempt."""
    delivery = await _delivery_for(session, viewer, delivery_id)
    event, endpoint, attempts = await logs.delivery_context(session, delivery)
    return DeliveryDetail(
        **{name: getattr(delivery, name) for name in DeliveryOut.model_fields},
        event=DeliveryEvent(
            id=event.id,
            event_type=event.event_type,
            payload=event.body["data"],
            created_at=event.created_at,
        ),
        endpoint=DeliveryEndpoint(
            id=endpoint.id,
            url=endpoint.url,
            enabled=endpoint.enabled,
            deleted=endpoint.deleted_at is not None,
        ),
        attempts=[AttemptOut.model_validate(a) for a in attempts],
    )


@router.post(
    "/v1/deliveries/{delivery_id}/resend",
    status_code=202,
    summary="Resend a delivery",
    responses=problem_responses(404, 409),
)
async def resend_delivery(delivery_id: str, session: SessionDep, viewer: AuthDep) -> DeliveryOut:
    """Queue the delivery now, whatever its state (a succeeded one is sent again). Its history
    stays; the next attempt is marked `manual`, and the retry limits apply afresh."""
    delivery = await _delivery_for(session, viewer, delivery_id)
    _, endpoint, _ = await logs.delivery_context(session, delivery)
    delivery = await recovery.resend(session, delivery, endpoint)
    return DeliveryOut.model_validate(delivery)


@router.get(
    "/v1/deliveries/{delivery_id}/attempts",
    summary="List a delivery's attempts",
    responses=problem_responses(404, 422),
)
async def list_delivery_attempts(
    delivery_id: str, session: SessionDep, viewer: AuthDep, page: PageDep
) -> Page[AttemptOut]:
    """Every attempt of one delivery, newest first."""
    delivery = await _delivery_for(session, viewer, delivery_id)
    query = logs.attempts_query(logs.AttemptFilter(delivery_id=delivery.id))
    rows, cursor = await paginate(session, query, Attempt.id, ids.Prefix.ATTEMPT, page)
    return Page(data=[AttemptOut.model_validate(row) for row in rows], next_cursor=cursor)


@router.get("/v1/attempts", summary="List attempts", responses=problem_responses(404, 422))
async def list_attempts(
    session: SessionDep,
    viewer: AuthDep,
    page: PageDep,
    tenant_id: Annotated[TenantRef | None, Query()] = None,
    endpoint_id: EndpointFilter = None,
    delivery_id: IdFilter = None,
    status_code: Annotated[int | None, Query(ge=100, le=599)] = None,
    error_kind: Annotated[StorableText | None, Query(max_length=32)] = None,
    since: Since = None,
    until: Until = None,
) -> Page[AttemptOut]:
    """The per-attempt log, newest first: request headers, response status, headers and
    (capped) body, duration, error kind and message."""
    where = logs.AttemptFilter(
        tenant_id=await tenant_id_for(session, viewer, tenant_id),
        endpoint_id=await _endpoint_filter(session, viewer, endpoint_id, tenant_id),
        delivery_id=_id_filter(ids.Prefix.DELIVERY, "delivery_id", delivery_id),
        status_code=status_code,
        error_kind=error_kind,
        since=since,
        until=until,
    )
    query = logs.attempts_query(where)
    rows, cursor = await paginate(session, query, Attempt.id, ids.Prefix.ATTEMPT, page)
    return Page(data=[AttemptOut.model_validate(row) for row in rows], next_cursor=cursor)
