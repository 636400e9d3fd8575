"""``/v1/events``: product backends emit events here; operators read them back."""

import uuid
from typing import Annotated

import asyncpg
import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost import ids, jsonvalue
from hookpost.admin import tenants
from hookpost.api.deps import (
    AppState,
    AuthDep,
    PageDep,
    Principal,
    SessionDep,
    StateDep,
    TenantCache,
    app_state,
)
from hookpost.api.errors import FieldError, Problem, not_found, problem_responses
from hookpost.api.json_body import StrictJSONRoute
from hookpost.api.pagination import paginate
from hookpost.api.schemas.common import Page, TenantRef
from hookpost.api.schemas.events import (
    DeliverySummary,
    Emitted,
    EmittedBatch,
    EventBatch,
    EventCreate,
    EventOut,
    IdempotencyKey,
)
from hookpost.api.scoping import tenant_id_for
from hookpost.db.models import Event
from hookpost.ingest import emit, events
from hookpost.ingest.validation import ValidationUnavailable
from hookpost.ops.metrics import DELIVERIES_QUEUED, EVENTS_INGESTED

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/events",
    tags=["events"],
    responses=problem_responses(401),
)

# POST /v1/events is the hottest route and FastAPI's part of it is mostly solving its
# parameters: it takes the request itself instead of StateDep, and reads the Idempotency-Key
# header through this adapter, documented below, instead of a Header() parameter.
_IDEMPOTENCY_KEY = TypeAdapter(IdempotencyKey | None)
IDEMPOTENCY_KEY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {**_IDEMPOTENCY_KEY.json_schema(), "title": "Idempotency-Key"},
}


def _idempotency_header(request: Request) -> str | None:
    """The Idempotency-Key header, validated as a Header() parameter would be."""
    try:
        key: str | None = _IDEMPOTENCY_KEY.validate_python(request.headers.get("idempotency-key"))
    except ValidationError as error:
        raise RequestValidationError(
            [{**item, "loc": ("header", "Idempotency-Key")} for item in error.errors()]
        ) from None
    return key


async def _tenant(
    database: asyncpg.Connection | asyncpg.Pool,
    principal: Principal,
    ref: str | None,
    uids: TenantCache,
) -> tuple[uuid.UUID, str | None]:
    """The tenant an event names (id or uid), or a tenant key's own, with the uid it was named
    by; 404 for one the caller may not see. A uid is read from ``uids`` when it holds it: the
    store checks that the tenant still has that uid (``emit.EventIn``), as it checks that a
    tenant named by id exists, which therefore needs no read here. ``database`` is read only
    for a uid the cache does not hold."""
    if ref is None:
        if principal.tenant_id is None:
            raise Problem(422, "validation_error", "tenant_id is required with an admin key")
        return principal.tenant_id, None
    uid = None
    tenant_id = ids.decode(ids.Prefix.TENANT, ref)
    if tenant_id is None:  # a uid: uids never look like tenant ids
        uid = ref
        tenant_id = uids.get(uid)
        if tenant_id is None:
            tenant_id = await tenants.find_id(database, uid)
            if tenant_id is None:
                raise not_found("tenant", ref)
            uids.put(uid, tenant_id)
    if not principal.can_see(tenant_id):
        raise not_found("tenant", ref)
    return tenant_id, uid


async def _events_in(
    database: asyncpg.Connection | asyncpg.Pool,
    principal: Principal,
    bodies: list[EventCreate],
    idempotency_keys: list[str | None],
    uids: TenantCache,
) -> list[emit.EventIn]:
    """The events to emit, each tenant resolved once."""
    found = {
        ref: await _tenant(database, principal, ref, uids)
        for ref in dict.fromkeys(body.tenant_id for body in bodies)
    }
    events = []
    for body, key in zip(bodies, idempotency_keys, strict=True):
        tenant_id, uid = found[body.tenant_id]
        events.append(emit.EventIn(tenant_id, body.event_type, body.payload, key, uid))
    return events


def _stale(events: list[EventCreate], error: emit.StaleTenant, uids: TenantCache) -> Problem:
    """The 404 once a tenant was stale twice; the first time only its cached uid is dropped
    (the next resolution reads it again)."""
    ref = events[error.index].tenant_id
    if ref is not None:
        uids.discard(ref)
    return not_found("tenant", ref or "of this API key")


def _check_size(body: EventCreate, max_bytes: int, where: str) -> None:
    try:
        size = len(jsonvalue.dumps(body.payload))
    except orjson.JSONEncodeError as error:  # integers past 64 bits, mostly
        raise Problem(
            422, "payload_invalid", f"The payload{where} cannot be encoded: {error}"
        ) from None
    if size > max_bytes:
        raise Problem(
            413,
            "payload_too_large",
            f"The payload{where} is {size} bytes; the limit is {max_bytes}",
        )


def _problem(error: emit.EmitError, prefix: list[str | int]) -> Problem:
    where = f" (event {error.index})" if len(prefix) > 1 else ""
    if isinstance(error, emit.UnknownEventType):
        return Problem(422, "event_type_not_found", error.message + where)
    if isinstance(error, emit.ArchivedEventType):
        return Problem(422, "event_type_archived", error.message + where)
    if isinstance(error, emit.PayloadTooSlow):
        return Problem(
            422,
            "payload_validation_timeout",
            f"The payload{where} was not accepted: {error.message} against the event type's "
            "schema (HOOKPOST_VALIDATION_TIMEOUT_S); simplify the schema or the payload",
        )
    if isinstance(error, emit.SchemaUnusable):
        return Problem(
            422,
            "event_type_schema_unusable",
            f"The event type's schema cannot be applied{where}: {error.message}; an admin "
            "must replace it (PATCH /v1/event-types/<name>)",
        )
    if isinstance(error, emit.InvalidPayload):
        loc = [*prefix, "payload", *error.path]
        return Problem(
            422,
            "payload_invalid",
            f"The payload{where} does not match the event type's schema: {error.message}",
            errors=[FieldError(loc=loc, message=error.message, type="schema")],
        )
    return Problem(409, "idempotency_conflict", error.message + where)


async def _check(state: AppState, events: list[emit.EventIn]) -> None:
    """Raise the problem of the first event of a batch that its type refuses; before any
    transaction, since validation may take up to its time bound."""
    try:
        errors = await emit.check(
            state.pool, events, types=state.event_types, validator=state.validator
        )
    except ValidationUnavailable as unavailable:
        raise _unavailable(unavailable) from None
    for refused in errors:
        if refused is not None:
            raise _problem(refused, ["body", "events", refused.index])


def _unavailable(error: ValidationUnavailable) -> Problem:
    return Problem(503, "validation_unavailable", f"Payloads cannot be validated now: {error}")


_CREATED = EVENTS_INGESTED.labels("created")  # each labels() call looks the child up
_DUPLICATE = EVENTS_INGESTED.labels("duplicate")


def _count(emitted: list[emit.Emitted]) -> None:
    created = [item for item in emitted if item.created]
    _CREATED.inc(len(created))
    _DUPLICATE.inc(len(emitted) - len(created))
    DELIVERIES_QUEUED.inc(sum(item.deliveries for item in created))


def _answer(item: emit.Emitted) -> Emitted:
    return Emitted(
        id=item.id,
        tenant_id=item.tenant_id,
        event_type=item.event_type,
        idempotency_key=item.idempotency_key,
        created_at=item.created_at,
        deliveries=item.deliveries,
        duplicate=not item.created,
    )


@router.post(
    "",
    status_code=202,
    summary="Emit an event",
    responses={
        200: {"model": Emitted, "description": "An idempotent repeat"},
        **problem_responses(404, 409, 413, 422, 503),
    },
    openapi_extra={"parameters": [IDEMPOTENCY_KEY_HEADER]},
)
async def emit_event(
    body: EventCreate, request: Request, principal: AuthDep, response: Response
) -> Emitted:
    """Record an event and queue one delivery to every enabled endpoint of the tenant that
    subscribes to its type, in one transaction. With an idempotency key (body or
    `Idempotency-Key` header), a repeat with the same payload answers 200 with the first
    event; with another payload, 409."""
    state = app_state(request)
    idempotency_key_header = _idempotency_header(request)
    key = body.idempotency_key or idempotency_key_header
    if idempotency_key_header and body.idempotency_key not in (None, idempotency_key_header):
        raise Problem(
            422, "validation_error", "idempotency_key differs from the Idempotency-Key header"
        )
    _check_size(body, state.settings.max_payload_bytes, "")
    for tries_left in (1, 0):  # a tenant stale in the cache costs one more try
        [event] = await _events_in(state.pool, principal, [body], [key], state.tenant_uids)
        try:
            emitted = await state.emit_group.emit(event)  # stored with concurrent requests'
            break
        except ValidationUnavailable as error:
            raise _unavailable(error) from None
        except emit.StaleTenant as error:
            problem = _stale([body], error, state.tenant_uids)
            if not tries_left:
                raise problem from None
        except emit.EmitError as error:
            raise _problem(error, ["body"]) from None
    if not emitted.created:
        response.status_code = 200
    _count([emitted])
    return _answer(emitted)


@router.post(
    "/batch",
    status_code=202,
    summary="Emit up to 1000 events",
    responses=problem_responses(404, 409, 413, 422, 503),
)
async def emit_batch(body: EventBatch, state: StateDep, principal: AuthDep) -> EmittedBatch:
    """Emit many events in one request and one transaction: all are recorded, or none (an
    error names the event by its index). Each answer says whether it was a repeat."""
    for index, item in enumerate(body.events):
        _check_size(item, state.settings.max_payload_bytes, f" of event {index}")
    keys = [item.idempotency_key for item in body.events]
    for tries_left in (1, 0):  # as for one event
        batch = await _events_in(state.pool, principal, body.events, keys, state.tenant_uids)
        if tries_left:
            await _check(state, batch)
        try:
            async with state.pool.acquire() as connection, connection.transaction():
                emitted = await emit.emit(connection, batch)
            break
        except emit.StaleTenant as error:
            problem = _stale(body.events, error, state.tenant_uids)
            if not tries_left:
                raise problem from None
        except emit.EmitError as error:
            raise _problem(error, ["body", "events", error.index]) from None
    _count(emitted)
    return EmittedBatch(data=[_answer(item) for item in emitted])


async def _event_out(session: AsyncSession, rows: list[Event]) -> list[EventOut]:
    deliveries = await events.deliveries_of(session, [row.id for row in rows])
    return [
        EventOut(
            id=row.id,
            tenant_id=row.tenant_id,
            event_type=row.event_type,
            payload=row.body["data"],
            idempotency_key=row.idempotency_key,
            created_at=row.created_at,
            deliveries=[
                DeliverySummary.model_validate(d, from_attributes=True) for d in deliveries[row.id]
            ],
        )
        for row in rows
    ]


@router.get("", summary="List events", responses=problem_responses(404, 422))
async def list_events(
    session: SessionDep,
    principal: AuthDep,
    page: PageDep,
    tenant_id: Annotated[TenantRef | None, Query(description="Only this tenant's.")] = None,
    event_type: Annotated[str | None, Query(max_length=255, description="Only this type.")] = None,
) -> Page[EventOut]:
    """Events, newest first, each with the state of its deliveries."""
    query = events.list_query(await tenant_id_for(session, principal, tenant_id), event_type)
    rows, cursor = await paginate(session, query, Event.id, ids.Prefix.EVENT, page)
    return Page(data=await _event_out(session, list(rows)), next_cursor=cursor)


@router.get("/{event_id}", summary="Get an event", responses=problem_responses(404))
async def get_event(event_id: str, session: SessionDep, principal: AuthDep) -> EventOut:
    """One event, its payload and the state of each of its deliveries."""
    parsed = ids.decode(ids.Prefix.EVENT, event_id)
    event = None if parsed is None else await events.get(session, parsed)
    if event is None or not principal.can_see(event.tenant_id):
        raise not_found("event", event_id)
    return (await _event_out(session, [event]))[0]
