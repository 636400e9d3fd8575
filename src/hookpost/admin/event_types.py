"""Event types: the named kinds of event, each with an optional JSON Schema for payloads."""

from typing import Any, ClassVar

from sqlalchemy import Select, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost.db import unstorable
from hookpost.db.models import EventType
from hookpost.errors import HookpostError

NAME_PATTERN = r"^[a-zA-Z0-9_]+(\.[a-zA-Z0-9_]+)*$"
# hookpost's own types (``hookpost.endpoint.disabled``...): the operator's, not for tenants
OWN_PREFIX = "hookpost."


def offered_to_tenants(*, own_types: bool = False) -> Select[EventType]:
    """The types a tenant may see and subscribe to in the portal: live ones, and hookpost's
    own only where the operator offers them (``own_types``)."""
    query = select(EventType).where(EventType.archived.is_(False))
    if not own_types:
        query = query.where(~EventType.name.startswith(OWN_PREFIX))
    return query


def is_offered(name: str, *, own_types: bool) -> bool:
    """Whether a tenant may ask for the type ``name`` (if it exists) in the portal."""
    return own_types or not name.startswith(OWN_PREFIX)


def example_payload(schema: Any) -> Any:
    """A payload shaped like ``schema``: its first example where it gives one, else each
    property's first enum value, example or a plain value of its type."""
    if not isinstance(schema, dict):
        return None
    for key in ("examples", "enum"):
        if isinstance(schema.get(key), list) and schema[key]:
            return schema[key][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        return {name: example_payload(sub) for name, sub in properties.items()}
    if kind == "array":
        return [example_payload(schema.get("items", {}))]
    plain = {"string": "string", "integer": 0, "number": 0, "boolean": False, "null": None}
    return plain.get(str(kind))


class NameTaken(HookpostError):
    """An event type with this name exists already."""

    code: ClassVar[str] = "event_type_exists"


async def find(session: AsyncSession, name: str) -> EventType | None:
    if unstorable.refusal(name) is not None:  # no name holds it, and Postgres cannot be asked
        return None
    return await session.scalar(select(EventType).where(EventType.name == name))


async def create(
    session: AsyncSession, *, name: str, description: str, schema: dict[str, Any] | None
) -> EventType:
    event_type = EventType(name=name, description=description, schema=schema, archived=False)
    session.add(event_type)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as error:
        raise NameTaken(name) from error
    return event_type


async def update(
    session: AsyncSession, event_type: EventType, changes: dict[str, Any]
) -> EventType:
    for field, value in changes.items():
        setattr(event_type, field, value)
    await session.flush()
    await session.refresh(event_type)
    return event_type


async def remove(session: AsyncSession, event_type: EventType) -> None:
    await session.execute(delete(EventType).where(EventType.id == event_type.id))


def list_query(*, include_archived: bool) -> Select[EventType]:
    query = select(EventType)
    if not include_archived:
        query = query.where(EventType.archived.is_(False))
    return query
