"""``/v1/events``: product backends emit events here; operators read them back."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost import ids
from hookpost.admin.schemas.events import EventBatch, EventCreate, IdempotencyKey
from hookpost.admin.schemas.fields import StorableText, TenantRef
from hookpost.api.deps import AuthDep, PageDep, SessionDep, StateDep, app_state
from hookpost.api.errors import FieldError, Problem, not_found, problem_responses
from hookpost.api.json_body import StrictJSONRoute
from hookpost.api.pagination import paginate
from hookpost.api.schemas.common import Page
from hookpost.api.schemas.events import DeliverySummary, Emitted, EmittedBatch, EventOut
from hookpost.api.scoping import tenant_id_for
from hookpost.db.models import Event
from hookpost.ingest import emit, events, intake
from hookpost.ingest.validation import ValidationUnavailable

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


def _problem(error: Exception, prefix: list[str | int]) -> Problem:
    """The problem an event refused by the intake answers; ``prefix`` locates the event."""
    index = getattr(error, "index", 0)
    where = f" (event {index})" if len(prefix) > 1 else ""
    if isinstance(error, ValidationUnavailable):
        return Problem("validation_unavailable", f"Payloads cannot be validated now: {error}")
    if isinstance(error, intake.TenantRequired):
        return Problem("validation_error", "tenant_id is required with an admin key")
    if isinstance(error, intake.TenantNotFound):
        return not_found("tenant", error.ref)
    if isinstance(error, intake.PayloadUnencodable):
        return Problem("payload_invalid", f"The payload{where} cannot be encoded: {error.message}")
    if isinstance(error, intake.DeliverAtTooFar):
        loc: list[str | int] = [*prefix, "deliver_at"]
        message = (
            f"deliver_at{where} is later than events are kept: at most "
            f"{error.latest.isoformat(timespec='seconds')} (HOOKPOST_EVENT_RETENTION_DAYS)"
        )
        return Problem(
            "deliver_at_too_far",
            message,
            errors=[FieldError(loc=loc, message=message, type="value_error")],
        )
    if isinstance(error, intake.PayloadTooLarge):
        return Problem(
            "payload_too_large",
            f"The payload{where} is {error.size} bytes; the limit is {error.limit}",
        )
    if isinstance(error, emit.UnknownEventType):
        return Problem("unknown_event_type", error.message + where)
    if isinstance(error, emit.ArchivedEventType):
        return Problem("event_type_archived", error.message + where)
    if isinstance(error, emit.PayloadTooSlow):
        return Problem(
            "payload_validation_timeout",
            f"The payload{where} was not accepted: {error.message} against the event type's "
            "schema (HOOKPOST_VALIDATION_TIMEOUT_S); simplify the schema or the payload",
        )
    if isinstance(error, emit.SchemaUnusable):
        return Problem(
            "event_type_schema_unusable",
            f"The event type's schema cannot be applied{where}: {error.message}; an admin "
            "must replace it (PATCH /v1/event-types/<name>)",
        )
    if isinstance(error, emit.InvalidPayload):
        loc = [*prefix, "payload", *error.path]
        return Problem(
            "payload_invalid",
            f"The payload{where} does not match the event type's schema: {error.message}",
            errors=[FieldError(loc=loc, message=error.message, type="schema")],
        )
    assert isinstance(error, emit.EmitError)
    return Problem("idempotency_conflict", error.message + where)


_REFUSALS = (intake.IntakeError, emit.EmitError, ValidationUnavailable)


def _item(body: EventCreate, idempotency_key: str | None) -> intake.EventItem:
    return intake.EventItem(
        body.tenant_id,
        body.event_type,
        body.payload,
        idempotency_key,
        body.deliver_at,
        body.channels,
    )


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
    body: EventCreate, request: Request, viewer: AuthDep, response: Response
) -> Emitted:
    """Record an event and queue one delivery to every enabled endpoint of the tenant that
    subscribes to its type, in one transaction. With an idempotency key (body or
    `Idempotency-Key` header), a repeat with the same payload answers 200 with the first
    event; with another payload, 409."""
    idempotency_key_header = _idempotency_header(request)
    key = body.idempotency_key or idempotency_key_header
    if idempotency_key_header and body.idempotency_key not in (None, idempotency_key_header):
        raise Problem("validation_error", "idempotency_key differs from the Idempotency-Key header")
    try:
        emitted = await app_state(request).intake.emit_one(viewer, _item(body, key))
    except _REFUSALS as error:
        raise _problem(error, ["body"]) from None
    if not emitted.created:
        response.status_code = 200
    return _answer(emitted)


@router.post(
    "/batch",
    status_code=202,
    summary="Emit up to 1000 events",
    responses=problem_responses(404, 409, 413, 422, 503),
)
async def emit_batch(body: EventBatch, state: StateDep, viewer: AuthDep) -> EmittedBatch:
    """Emit many events in one request and one transaction: all are recorded, or none (an
    error names the event by its index). Each answer says whether it was a repeat."""
    items = [_item(item, item.idempotency_key) for item in body.events]
    try:
        emitted = await state.intake.emit_batch(viewer, items)
    except _REFUSALS as error:
        raise _problem(error, ["body", "events", getattr(error, "index", 0)]) from None
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
            deliver_at=row.deliver_at,
            channels=row.channels,
            deliveries=[
                DeliverySummary.model_validate(d, from_attributes=True) for d in deliveries[row.id]
            ],
        )
        for row in rows
    ]


@router.get("", summary="List events", responses=problem_responses(404, 422))
async def list_events(
    session: SessionDep,
    viewer: AuthDep,
    page: PageDep,
    tenant_id: Annotated[TenantRef | None, Query(description="Only this tenant's.")] = None,
    event_type: Annotated[
        StorableText | None, Query(max_length=255, description="Only this type.")
    ] = None,
) -> Page[EventOut]:
    """Events, newest first, each with the state of its deliveries."""
    query = events.list_query(await tenant_id_for(session, viewer, tenant_id), event_type)
    rows, cursor = await paginate(session, query, Event.id, ids.Prefix.EVENT, page)
    return Page(data=await _event_out(session, list(rows)), next_cursor=cursor)


@router.get("/{event_id}", summary="Get an event", responses=problem_responses(404))
async def get_event(event_id: str, session: SessionDep, viewer: AuthDep) -> EventOut:
    """One event, its payload and the state of each of its deliveries."""
    parsed = ids.decode(ids.Prefix.EVENT, event_id)
    event = None if parsed is None else await events.get(session, parsed)
    if event is None or not viewer.can_see(event.tenant_id):
        raise not_found("event", event_id)
    return (await _event_out(session, [event]))[0]
