"""``/api/v1/app/{app_id}/endpoint``: Svix's endpoints of an application, hookpost's
endpoints of a tenant. An endpoint made here with no event types receives every type (it
subscribes to ``*``), as Svix's do; its ``throttleRate`` (or the older ``rateLimit``) is
hookpost's rate limit and ``filterTypes`` the older name of ``eventTypes``."""

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost import ids
from hookpost.access import Viewer
from hookpost.admin import endpoints, tenants
from hookpost.admin import event_types as admin_event_types
from hookpost.admin.schemas.endpoints import EndpointCreate, EndpointUpdate, SecretRotate
from hookpost.db import unstorable
from hookpost.db.engine import driver_connection
from hookpost.db.models import Endpoint
from hookpost.errors import NotFound
from hookpost.ingest import emit
from hookpost.ops import recovery, stats
from hookpost.state import AppState
from hookpost.svix.applications import metadata_out
from hookpost.svix.auth import SvixViewer
from hookpost.svix.deps import SessionDep, StateDep
from hookpost.svix.messages import MessageOut
from hookpost.svix.paging import PagingDep, page
from hookpost.svix.wire import Invalid, ListResponse, SvixModel, SvixRoute, checked

router = APIRouter(prefix="/api/v1/app/{app_id}/endpoint", route_class=SvixRoute, tags=["svix"])

EVERY_TYPE = ["*"]
RENAMES = {"rate_limit_per_s": "throttle_rate", "enabled": "disabled"}
GRACE_S = 86_400  # Svix's: the old secret signs beside the new one for a day


class EndpointIn(SvixModel):
    url: str
    description: str = ""
    uid: str | None = None
    disabled: bool = False
    event_types: list[str] | None = None
    filter_types: list[str] | None = None
    channels: list[str] | None = None
    throttle_rate: int | None = None
    rate_limit: int | None = None
    secret: str | None = None
    metadata: dict[str, str] | None = None
    headers: dict[str, str] | None = None


class EndpointPatch(SvixModel):
    url: str | None = None
    description: str | None = None
    uid: str | None = None
    disabled: bool | None = None
    event_types: list[str] | None = None
    filter_types: list[str] | None = None
    channels: list[str] | None = None
    throttle_rate: int | None = None
    rate_limit: int | None = None
    metadata: dict[str, str] | None = None


class EndpointOut(SvixModel):
    id: str
    uid: str | None
    url: str
    description: str
    metadata: dict[str, str]
    disabled: bool
    event_types: list[str] | None
    filter_types: list[str] | None
    channels: list[str] | None
    throttle_rate: int | None
    rate_limit: int | None
    version: int = 1
    created_at: datetime
    updated_at: datetime


class SecretOut(SvixModel):
    key: str


class SecretRotateIn(SvixModel):
    key: str | None = None
    grace_period_seconds: int | None = None


class HeadersIn(SvixModel):
    headers: dict[str, str]


class HeadersPatchIn(SvixModel):
    headers: dict[str, str]
    delete_headers: list[str] | None = None


class HeadersOut(SvixModel):
    headers: dict[str, str]
    sensitive: list[str]


async def out(session: AsyncSession, rows: list[Endpoint]) -> list[EndpointOut]:
    subscribed = await endpoints.subscriptions_of(session, [row.id for row in rows])
    answers = []
    for row in rows:
        patterns = [item.event_type for item in subscribed[row.id]]
        types = None if patterns == EVERY_TYPE else patterns
        answers.append(
            EndpointOut(
                id=ids.encode(ids.Prefix.ENDPOINT, row.id),
                uid=row.uid,
                url=row.url,
                description=row.description,
                metadata=metadata_out(row.metadata_),
                disabled=not row.enabled,
                event_types=types,
                filter_types=types,
                channels=row.channels,
                throttle_rate=row.rate_limit_per_s,
                rate_limit=row.rate_limit_per_s,
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
        )
    return answers


async def visible_endpoint(
    session: AsyncSession, viewer: Viewer, app_id: str, endpoint_id: str
) -> Endpoint:
    """The endpoint ``endpoint_id`` (id or uid) of the application ``app_id``, as ``viewer``
    may see it."""
    tenant = await tenants.visible(session, viewer, app_id)
    return await endpoints.visible(session, viewer, endpoint_id, tenant.id)


def _types(event_types: list[str] | None, filter_types: list[str] | None) -> list[str]:
    return event_types or filter_types or EVERY_TYPE


def _create_body(tenant_ref: str, body: EndpointIn) -> EndpointCreate:
    values: dict[str, Any] = {
        "tenant_id": tenant_ref,
        "url": body.url,
        "description": body.description,
        "uid": body.uid,
        "enabled": not body.disabled,
        "event_types": _types(body.event_types, body.filter_types),
        "channels": body.channels,
        "rate_limit_per_s": body.throttle_rate or body.rate_limit,
        "secret": body.secret,
        "metadata": body.metadata or {},
        "headers": body.headers or {},
        # as Svix delivers: the payload itself, under svix-* headers
        "body_format": "payload",
        "signature_headers": "svix",
    }
    return checked(EndpointCreate, values, RENAMES)


@router.get("", summary="List endpoints")
async def list_endpoints(
    app_id: str, session: SessionDep, viewer: SvixViewer, paging: PagingDep
) -> ListResponse[EndpointOut]:
    tenant = await tenants.visible(session, viewer, app_id)
    paged = await page(
        session,
        endpoints.list_query(tenant.id),
        Endpoint.id,
        paging,
        prefix=ids.Prefix.ENDPOINT,
        default="ascending",
    )
    return paged.answer(await out(session, paged.rows))


@router.post("", status_code=201, summary="Create an endpoint")
async def create_endpoint(
    app_id: str, body: EndpointIn, session: SessionDep, state: StateDep, viewer: SvixViewer
) -> EndpointOut:
    tenant = await tenants.visible(session, viewer, app_id)
    viewer.require_change()
    made = _create_body(ids.encode(ids.Prefix.TENANT, tenant.id), body)
    row = await endpoints.create_from(session, state.settings, state.secret_box, tenant.id, made)
    return (await out(session, [row]))[0]


@router.get("/{endpoint_id}", summary="Get an endpoint")
async def get_endpoint(
    app_id: str, endpoint_id: str, session: SessionDep, viewer: SvixViewer
) -> EndpointOut:
    return (await out(session, [await visible_endpoint(session, viewer, app_id, endpoint_id)]))[0]


async def _change(
    session: AsyncSession, state: AppState, row: Endpoint, changes: dict[str, Any]
) -> Endpoint:
    return await endpoints.update_from(
        session, state.settings, row, checked(EndpointUpdate, changes, RENAMES)
    )


def _changes(body: EndpointIn | EndpointPatch, *, whole: bool) -> dict[str, Any]:
    """The fields of hookpost's change that ``body`` sets (all of them for a PUT)."""
    sent = body.model_fields_set if not whole else set(type(body).model_fields)
    changes: dict[str, Any] = {
        name: getattr(body, name)
        for name in ("url", "description", "uid", "channels", "metadata")
        if name in sent
    }
    if changes.get("url", "") is None:
        del changes["url"]
    if changes.get("description", "") is None:
        changes["description"] = ""
    if changes.get("metadata", {}) is None:
        changes["metadata"] = {}
    if sent & {"event_types", "filter_types"}:
        changes["event_types"] = _types(body.event_types, body.filter_types)
    if sent & {"throttle_rate", "rate_limit"}:
        changes["rate_limit_per_s"] = body.throttle_rate or body.rate_limit
    if "disabled" in sent and body.disabled is not None:
        changes["enabled"] = not body.disabled
        if body.disabled:
            changes["disabled_reason"] = "disabled through the Svix API"
    return changes


@router.put("/{endpoint_id}", summary="Update an endpoint, or create it")
async def update_endpoint(
    app_id: str,
    endpoint_id: str,
    body: EndpointIn,
    session: SessionDep,
    state: StateDep,
    viewer: SvixViewer,
    response: Response,
) -> EndpointOut:
    tenant = await tenants.visible(session, viewer, app_id)
    viewer.require_change()
    found = await endpoints.find(session, endpoint_id, tenant.id)
    if found is None:
        response.status_code = 201
        made = _create_body(
            ids.encode(ids.Prefix.TENANT, tenant.id),
            body.model_copy(update={"uid": body.uid or endpoint_id}),
        )
        row = await endpoints.create_from(
            session, state.settings, state.secret_box, tenant.id, made
        )
    else:
        changes = _changes(body, whole=True)
        if body.uid is None:  # a PUT by uid keeps it
            del changes["uid"]
        row = await _change(session, state, found, changes)
    return (await out(session, [row]))[0]


@router.patch("/{endpoint_id}", summary="Patch an endpoint")
async def patch_endpoint(
    app_id: str,
    endpoint_id: str,
    body: EndpointPatch,
    session: SessionDep,
    state: StateDep,
    viewer: SvixViewer,
) -> EndpointOut:
    row = await visible_endpoint(session, viewer, app_id, endpoint_id)
    viewer.require_change()
    row = await _change(session, state, row, _changes(body, whole=False))
    return (await out(session, [row]))[0]


@router.delete("/{endpoint_id}", status_code=204, summary="Delete an endpoint")
async def delete_endpoint(
    app_id: str, endpoint_id: str, session: SessionDep, viewer: SvixViewer
) -> Response:
    row = await visible_endpoint(session, viewer, app_id, endpoint_id)
    viewer.require_change()
    await endpoints.remove(session, row)
    return Response(status_code=204)


@router.get("/{endpoint_id}/secret", summary="Get an endpoint's signing secret")
async def get_secret(
    app_id: str, endpoint_id: str, session: SessionDep, state: StateDep, viewer: SvixViewer
) -> SecretOut:
    row = await visible_endpoint(session, viewer, app_id, endpoint_id)
    return SecretOut(key=await endpoints.current_secret(session, state.secret_box, row.id))


@router.post("/{endpoint_id}/secret/rotate", summary="Rotate an endpoint's signing secret")
async def rotate_secret(
    app_id: str,
    endpoint_id: str,
    body: SecretRotateIn,
    session: SessionDep,
    state: StateDep,
    viewer: SvixViewer,
) -> SecretOut:
    """The new secret is the answer (the SDKs of 2.x read it; those of 1.x ignore it)."""
    row = await visible_endpoint(session, viewer, app_id, endpoint_id)
    viewer.require_change()
    grace_s = GRACE_S if body.grace_period_seconds is None else body.grace_period_seconds
    values = {"key": body.key, "grace_period_s": grace_s}
    rotation = checked(SecretRotate, values, {"grace_period_s": "grace_period_seconds"})
    key = await endpoints.rotate_secret(
        session,
        state.secret_box,
        row.id,
        new_secret=rotation.key,
        grace_period_s=rotation.grace_period_s,
    )
    return SecretOut(key=key)


@router.get("/{endpoint_id}/headers", summary="Get an endpoint's headers")
async def get_headers(
    app_id: str, endpoint_id: str, session: SessionDep, viewer: SvixViewer
) -> HeadersOut:
    row = await visible_endpoint(session, viewer, app_id, endpoint_id)
    return HeadersOut(headers=row.headers, sensitive=[])


@router.put("/{endpoint_id}/headers", status_code=204, summary="Set an endpoint's headers")
async def set_headers(
    app_id: str,
    endpoint_id: str,
    body: HeadersIn,
    session: SessionDep,
    state: StateDep,
    viewer: SvixViewer,
) -> Response:
    row = await visible_endpoint(session, viewer, app_id, endpoint_id)
    viewer.require_change()
    await _change(session, state, row, {"headers": body.headers})
    return Response(status_code=204)


@router.patch("/{endpoint_id}/headers", status_code=204, summary="Patch an endpoint's headers")
async def patch_headers(
    app_id: str,
    endpoint_id: str,
    body: HeadersPatchIn,
    session: SessionDep,
    state: StateDep,
    viewer: SvixViewer,
) -> Response:
    row = await visible_endpoint(session, viewer, app_id, endpoint_id)
    viewer.require_change()
    gone = {name.lower() for name in body.delete_headers or []}
    headers = {
        name: value
        for name, value in {**row.headers, **body.headers}.items()
        if name.lower() not in gone
    }
    await _change(session, state, row, {"headers": headers})
    return Response(status_code=204)


class RecoverIn(SvixModel):
    since: datetime
    until: datetime | None = None


class RecoverOut(SvixModel):
    id: str
    status: str
    task: str
    updated_at: datetime


class EndpointStatsOut(SvixModel):
    success: int
    pending: int
    sending: int
    fail: int
    canceled: int


@router.post("/{endpoint_id}/recover", status_code=202, summary="Recover failed messages")
async def recover(
    app_id: str,
    endpoint_id: str,
    body: RecoverIn,
    session: SessionDep,
    state: StateDep,
    viewer: SvixViewer,
) -> RecoverOut:
    """Queue again the endpoint's failed deliveries since ``since`` (until ``until`` or now).
    hookpost does it before answering, so the task Svix would run is already finished."""
    row = await visible_endpoint(session, viewer, app_id, endpoint_id)
    viewer.require_change()
    now = datetime.now(UTC)
    await recovery.recover(state.engine, row, since=body.since, until=body.until or now)
    return RecoverOut(
        id=ids.encode(ids.Prefix.ENDPOINT, row.id),
        status="finished",
        task="endpoint.recover",
        updated_at=datetime.now(UTC),
    )


@router.get("/{endpoint_id}/stats", summary="An endpoint's deliveries by state")
async def get_stats(
    app_id: str,
    endpoint_id: str,
    session: SessionDep,
    viewer: SvixViewer,
    since: datetime | None = None,
    until: datetime | None = None,
) -> EndpointStatsOut:
    """Over the window asked (the last 28 days and the next hour without one)."""
    row = await visible_endpoint(session, viewer, app_id, endpoint_id)
    now = datetime.now(UTC)
    found = await stats.endpoint_stats(
        session,
        row.id,
        since=since or now - timedelta(days=28),
        until=until or now + timedelta(hours=1),
    )
    counts = found.counts
    return EndpointStatsOut(
        success=counts.get("succeeded", 0),
        pending=counts.get("pending", 0) + counts.get("waiting", 0),
        sending=counts.get("in_flight", 0),
        fail=counts.get("failed", 0),
        canceled=counts.get("cancelled", 0),
    )


class EventExampleIn(SvixModel):
    event_type: str
    example_index: int | None = None
    payload: dict[str, Any] | None = None  # sent instead of the example


@router.post("/{endpoint_id}/send-example", status_code=202, summary="Send an example message")
async def send_example(
    app_id: str, endpoint_id: str, body: EventExampleIn, session: SessionDep, viewer: SvixViewer
) -> MessageOut:
    """A message of the event type shaped like its schema (its ``examples``, the one at
    ``exampleIndex``, where it gives some), to this endpoint alone, whatever it receives."""
    row = await visible_endpoint(session, viewer, app_id, endpoint_id)
    viewer.require_change()
    found = await admin_event_types.find(session, body.event_type)
    if found is None:
        raise NotFound("event_type", body.event_type)
    given = found.schema.get("examples") if isinstance(found.schema, dict) else None
    index = body.example_index or 0
    if body.payload is not None:
        example: Any = body.payload
        if (refused := unstorable.json_refusal(example, keep_nul=True)) is not None:
            place, reason = refused
            raise Invalid(
                [{"loc": ["body", "payload", *place], "msg": reason, "type": "value_error"}]
            )
    elif isinstance(given, list) and 0 <= index < len(given):
        example = given[index]
    else:
        example = admin_event_types.example_payload(found.schema)
    payload = example if isinstance(example, dict) else {}
    event_id, _ = await emit.send_to_one(
        await driver_connection(session), row.tenant_id, row.id, found.name, payload
    )
    return MessageOut(
        id=ids.encode(ids.Prefix.EVENT, event_id),
        event_id=None,
        event_type=found.name,
        payload=payload,
        channels=None,
        timestamp=datetime.now(UTC),
    )
