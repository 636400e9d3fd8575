"""Emitting events: ``check`` holds them against their event types, then one statement writes
the events and their deliveries (the fan-out), set-based whatever the batch size, and wakes
the workers when its transaction commits.

It runs on the asyncpg connection of the caller's transaction: the API's request, or the
worker's result flush when hookpost emits its own operational events."""

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from textwrap import indent
from typing import Any, ClassVar

import asyncpg

from hookpost import ids, jsonvalue
from hookpost.cache import TtlCache
from hookpost.delivery import queue
from hookpost.errors import HookpostError
from hookpost.ingest.schemas import UnusableSchema
from hookpost.ingest.validation import (
    ValidationTimeout,
    Validator,
)


@dataclass(frozen=True)
class EventIn:
    """One event to emit, its tenant already resolved. The event is stored only if that
    tenant still exists and, when ``tenant_uid`` is given, still has that uid: a tenant
    resolved from a cache (the API's) can never receive another tenant's event."""

    tenant_id: uuid.UUID
    event_type: str
    payload: dict[str, Any]
    idempotency_key: str | None
    tenant_uid: str | None = None
    deliver_at: datetime | None = None  # its deliveries fall due then; None: at once
    channels: list[str] | None = None  # only endpoints without channels, or sharing one, get it


@dataclass(frozen=True)
class Emitted:
    """The stored event for one ``EventIn``; ``created`` is False for an idempotent repeat."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    event_type: str
    idempotency_key: str | None
    created_at: datetime
    deliveries: int
    created: bool
    # the ordered lanes (endpoint, lane) it was stored waiting in: ``send_lanes_on``
    waiting_in: list[tuple[uuid.UUID, str]] = field(default_factory=list)


class EmitError(HookpostError):
    """An event of the request cannot be emitted; ``index`` is its place in the request."""

    code: ClassVar[str] = "validation_error"

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


class UnknownEventType(EmitError):
    code: ClassVar[str] = "unknown_event_type"


class ArchivedEventType(EmitError):
    code: ClassVar[str] = "event_type_archived"


class InvalidPayload(EmitError):
    code: ClassVar[str] = "payload_invalid"

    def __init__(self, index: int, path: list[str | int], message: str) -> None:
        super().__init__(index, message)
        self.path = path


class PayloadTooSlow(EmitError):
    """Validating the payload ran over the time bound."""

    code: ClassVar[str] = "payload_validation_timeout"


class SchemaUnusable(EmitError):
    """The event type's schema cannot be applied; an admin must replace it."""

    code: ClassVar[str] = "event_type_schema_unusable"


class IdempotencyConflict(EmitError):
    code: ClassVar[str] = "idempotency_conflict"


class StaleTenant(EmitError):
    """The event's tenant no longer exists, or no longer has the uid it was named by."""

    code: ClassVar[str] = "tenant_changed"


def payload_hash(event_type: str, payload: dict[str, Any]) -> bytes:
    """What an idempotent repeat must match: the type and the payload, key order aside."""
    return hashlib.sha256(
        event_type.encode() + b"\0" + jsonvalue.dumps(payload, sort_keys=True)
    ).digest()


def body_timestamp(at: datetime) -> str:
    """The ``timestamp`` of a webhook body: UTC, to the microsecond."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def webhook_body(event_id: uuid.UUID, event_type: str, timestamp: str, payload: Any) -> str:
    """The exact body every attempt of this event sends (the README's Delivering section shows
    it); ``timestamp`` from ``body_timestamp``, made once for the events stored together."""
    return jsonvalue.dumps(
        {
            "id": ids.encode(ids.Prefix.EVENT, event_id),
            "type": event_type,
            "timestamp": timestamp,
            "data": payload,
        }
    ).decode()


_EVENT_TYPES = "SELECT name, archived, schema::text FROM event_types WHERE name = ANY($1::text[])"

# One statement stores the events and fans each new one out into deliveries (``queue.FAN_OUT``),
# so it is atomic without a transaction of the caller's. A repeated idempotency key inserts
# nothing (ON CONFLICT), and its event is not in the answer. An event whose tenant is gone, or
# no longer has the uid the caller named it by, comes back as stale, and then the statement
# stores nothing at all. When a delivery waits to be sent, the statement notifies the workers:
# the notification goes out when its transaction commits, never before the deliveries can be
# seen, and costs no round trip of its own.
_STORE = f"""
WITH stale AS (
    SELECT u.id FROM unnest($1::uuid[], $2::uuid[], $8::text[]) AS u(id, tenant_id, uid)
    WHERE NOT EXISTS (
        SELECT 1 FROM tenants t
        WHERE t.id = u.tenant_id AND (u.uid IS NULL OR t.uid = u.uid)
    )
),
inserted AS (
    INSERT INTO events (id, tenant_id, event_type, body, idempotency_key, payload_hash,
                        created_at, deliver_at, channels)
    SELECT u.id, u.tenant_id, u.event_type, u.body, u.idempotency_key, u.payload_hash,
           u.created_at, u.deliver_at,
           string_to_array(u.channels, ',')
    FROM unnest(
        $1::uuid[], $2::uuid[], $3::text[], $4::json[], $5::text[], $6::bytea[],
        $7::timestamptz[], $9::timestamptz[], $10::text[]
    ) AS u(id, tenant_id, event_type, body, idempotency_key, payload_hash, created_at,
           deliver_at, channels)
    WHERE NOT EXISTS (SELECT 1 FROM stale)
    ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, tenant_id, event_type, deliver_at, channels,
              {queue.payload_of("body")} -> 'data' AS payload
),
fanned AS (
{indent(queue.FAN_OUT, "    ")}
),
counted AS (
    SELECT event_id, count(*) AS deliveries,
           array_agg(endpoint_id) FILTER (WHERE waits) AS lane_endpoints,
           array_agg(lane) FILTER (WHERE waits) AS lanes
    FROM fanned GROUP BY event_id
),
woken AS (
    SELECT pg_notify('{queue.NOTIFY_CHANNEL}', '') WHERE EXISTS (SELECT FROM fanned WHERE queued)
)
SELECT i.id, coalesce(c.deliveries, 0) AS deliveries, false AS stale,
       c.lane_endpoints, c.lanes
FROM inserted i LEFT JOIN counted c ON c.event_id = i.id LEFT JOIN woken ON true
UNION ALL
SELECT id, 0, true, NULL, NULL FROM stale
"""

_EXISTING = """
SELECT e.id, e.tenant_id, e.idempotency_key, e.payload_hash, e.created_at,
       (SELECT count(*) FROM deliveries d WHERE d.event_id = e.id) AS deliveries
FROM events e
JOIN unnest($1::uuid[], $2::text[]) AS k(tenant_id, key)
  ON e.tenant_id = k.tenant_id AND e.idempotency_key = k.key
"""


@dataclass(frozen=True, slots=True)
class _TypeRules:
    archived: bool
    schema: str | None  # JSON text, as validation takes it


EventTypeCache = TtlCache[str, _TypeRules]  # by name; only types found are kept


async def _type_rules(
    database: asyncpg.Connection | asyncpg.Pool, names: set[str], cache: EventTypeCache | None
) -> dict[str, _TypeRules]:
    """The rules of the named event types that exist, from the cache or one query."""
    found = {}
    if cache is not None:
        found = {name: rules for name in names if (rules := cache.get(name)) is not None}
    if missing := names - found.keys():
        for row in await database.fetch(_EVENT_TYPES, list(missing)):
            rules = _TypeRules(row["archived"], row["schema"])
            found[row["name"]] = rules
            if cache is not None:
                cache.put(row["name"], rules)
    return found


async def check(
    database: asyncpg.Connection | asyncpg.Pool,
    events: Sequence[EventIn],
    *,
    types: EventTypeCache | None,
    validator: Validator | None,
) -> list[EmitError | None]:
    """Each event's error against its type (unknown, archived, a payload its schema refuses),
    or None. Run it before ``emit`` and outside any transaction: validation may take up to
    its time bound. Without a ``validator`` no payload is validated (hookpost's own events).
    Raises ``ValidationUnavailable`` when no validation process answers."""
    found = await _type_rules(database, {event.event_type for event in events}, types)
    errors: list[EmitError | None] = [None] * len(events)
    by_schema: dict[str, list[int]] = {}
    for index, event in enumerate(events):
        rules = found.get(event.event_type)
        if rules is None:
            errors[index] = UnknownEventType(
                index,
                f"No event type named {event.event_type!r}: create it first "
                "(POST /v1/event-types), or check its spelling",
            )
        elif rules.archived:
            errors[index] = ArchivedEventType(
                index, f"The event type {event.event_type!r} is archived"
            )
        elif rules.schema is not None and validator is not None:
            by_schema.setdefault(rules.schema, []).append(index)
    for schema, indexes in by_schema.items():
        assert validator is not None
        try:
            found_errors = await validator.payload_errors(
                schema, [events[index].payload for index in indexes]
            )
        except (ValidationTimeout, UnusableSchema) as error:
            kind = PayloadTooSlow if isinstance(error, ValidationTimeout) else SchemaUnusable
            for index in indexes:
                errors[index] = kind(index, str(error))
            continue
        for index, found_error in zip(indexes, found_errors, strict=True):
            if found_error is not None:
                errors[index] = InvalidPayload(index, found_error.path, found_error.message)
    return errors


async def emit(connection: asyncpg.Connection, events: Sequence[EventIn]) -> list[Emitted]:
    """Store ``events``, checked (``check``), with their deliveries: one atomic statement,
    and for repeated idempotency keys a read of the first events; the workers are woken when
    the caller's transaction commits. A repeat with the same payload answers the stored event;
    with another payload it raises ``IdempotencyConflict`` (inside a caller's transaction,
    which then rolls back). ``StaleTenant`` (an event's tenant is gone or its uid moved, see
    ``EventIn``) is raised before anything is stored."""
    results = []
    for outcome in await _store(connection, events):
        if isinstance(outcome, EmitError):
            raise outcome
        results.append(outcome)
    return results


async def send_lanes_on(
    database: asyncpg.Connection | asyncpg.Pool, emitted: Sequence[Emitted]
) -> None:
    """Once the events' transaction has committed: the first delivery of each ordered lane
    they were stored waiting in goes, where nothing is left before it. A flush that finished
    the lane's last delivery while they were being stored could not see them, nor they it;
    whichever of the two looks last after both committed sees both."""
    lanes = {lane for item in emitted for lane in item.waiting_in}
    if lanes:
        await queue.promote_lanes(database, lanes)


async def emit_each(
    connection: asyncpg.Connection, events: Sequence[EventIn]
) -> list[Emitted | EmitError]:
    """Store independent events, checked, together, outside any transaction of the caller's:
    each gets its own outcome, and one event's error (its index is its place in ``events``)
    stores nothing of it and leaves the others alone. The workers are woken as for ``emit``."""
    outcomes: list[Emitted | EmitError | None] = [None] * len(events)
    while todo := [index for index, outcome in enumerate(outcomes) if outcome is None]:
        try:
            stored = await _store(connection, [events[index] for index in todo])
            await send_lanes_on(connection, [item for item in stored if isinstance(item, Emitted)])
        except StaleTenant as error:  # nothing was stored: again without that event
            outcomes[todo[error.index]] = StaleTenant(todo[error.index], error.message)
            continue
        for index, outcome in zip(todo, stored, strict=True):
            if isinstance(outcome, EmitError):
                outcome.index = index
            outcomes[index] = outcome
    return [outcome for outcome in outcomes if outcome is not None]


async def _store(
    connection: asyncpg.Connection, events: Sequence[EventIn]
) -> list[Emitted | EmitError]:
    """Store events whose types were checked: an ``Emitted`` for each, or an
    ``IdempotencyConflict`` for a key used with another payload (that event stored nothing).
    Raises ``StaleTenant`` for the first stale event, and then nothing was stored."""
    now = datetime.now(UTC)
    new_ids = [ids.new_id() for _ in events]
    hashes = [payload_hash(event.event_type, event.payload) for event in events]
    tenant_ids = [event.tenant_id for event in events]
    event_types = [event.event_type for event in events]
    timestamp = body_timestamp(now)
    bodies = [
        webhook_body(i, e.event_type, timestamp, e.payload)
        for i, e in zip(new_ids, events, strict=True)
    ]
    rows = await connection.fetch(
        _STORE,
        new_ids,
        tenant_ids,
        event_types,
        bodies,
        [event.idempotency_key for event in events],
        hashes,
        [now] * len(events),
        [event.tenant_uid for event in events],
        [event.deliver_at for event in events],
        # a channel's name has no comma: each event's list goes as one string (a Postgres
        # array of arrays must be rectangular)
        [None if event.channels is None else ",".join(event.channels) for event in events],
    )
    if stale := {row["id"] for row in rows if row["stale"]}:
        index = next(i for i, event_id in enumerate(new_ids) if event_id in stale)
        raise StaleTenant(index, "The event's tenant was deleted or its uid changed")
    stored = {row["id"]: row for row in rows}

    repeats = [index for index, event_id in enumerate(new_ids) if event_id not in stored]
    existing = {}
    if repeats:
        found = await connection.fetch(
            _EXISTING,
            [tenant_ids[i] for i in repeats],
            [events[i].idempotency_key for i in repeats],
        )
        existing = {(row["tenant_id"], row["idempotency_key"]): row for row in found}

    results: list[Emitted | EmitError] = []
    for index, event in enumerate(events):
        if (row := stored.get(new_ids[index])) is not None:
            results.append(
                Emitted(
                    new_ids[index],
                    event.tenant_id,
                    event.event_type,
                    event.idempotency_key,
                    now,
                    row["deliveries"],
                    created=True,
                    waiting_in=list(
                        zip(row["lane_endpoints"] or (), row["lanes"] or (), strict=True)
                    ),
                )
            )
            continue
        row = existing[(event.tenant_id, event.idempotency_key)]
        if bytes(row["payload_hash"]) != hashes[index]:
            results.append(
                IdempotencyConflict(
                    index,
                    f"The idempotency key {event.idempotency_key!r} was used for another event",
                )
            )
            continue
        results.append(
            Emitted(
                row["id"],
                event.tenant_id,
                event.event_type,
                event.idempotency_key,
                row["created_at"],
                row["deliveries"],
                created=False,
            )
        )
    return results


TEST_EVENT_TYPE = "hookpost.test"

# A test event stored with its one delivery, and the workers woken as it commits.
_SEND_TO_ONE = f"""
WITH inserted AS (
    INSERT INTO events (id, tenant_id, event_type, body, payload_hash, created_at)
    VALUES ($2, $3, $7, $4::json, $5, $6)
    RETURNING id, tenant_id, event_type
),
delivered AS (
{indent(queue.DIRECT_DELIVERY, "    ")}
)
SELECT id, pg_notify('{queue.NOTIFY_CHANNEL}', '') FROM delivered
"""


async def send_test(
    connection: asyncpg.Connection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> uuid.UUID:
    """Send the endpoint a ``hookpost.test`` event, whatever it subscribes to; the
    delivery's id. The caller checked that the endpoint is the tenant's."""
    payload = {"message": "A test event from hookpost: your endpoint receives webhooks."}
    _, delivery_id = await send_to_one(connection, tenant_id, endpoint_id, TEST_EVENT_TYPE, payload)
    return delivery_id


async def send_to_one(
    connection: asyncpg.Connection,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    event_type: str,
    payload: dict[str, Any],
) -> tuple[uuid.UUID, uuid.UUID]:
    """Send one endpoint an event of ``event_type`` (a test, an example of a type), whatever
    it subscribes to; the event's id and the delivery's. The caller checked the endpoint is
    the tenant's and the payload storable."""
    event_id, now = ids.new_id(), datetime.now(UTC)
    body = webhook_body(event_id, event_type, body_timestamp(now), payload)
    delivery_id: uuid.UUID = await connection.fetchval(
        _SEND_TO_ONE,
        endpoint_id,
        event_id,
        tenant_id,
        body,
        payload_hash(event_type, payload),
        now,
        event_type,
    )
    return event_id, delivery_id
