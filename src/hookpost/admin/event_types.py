"""Event types: the named kinds of event, each with an optional JSON Schema for payloads."""

from typing import Any, ClassVar

from sqlalchemy import Select, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost.db.models import EventType
from hookpost.errors import HookpostError

NAME_PATTERN = r"^[a-zA-Z0-9_]+(\.[a-zA-Z0-9_]+)*$"
# hookpost's own types (``hookpost.endpoint.disabled``...): the operator's, not for tenants
OWN_PREFIX = "hookpost."


def offered_to_tenants() -> Select[str]:
    """The names a tenant may subscribe to in the portal: live types, not hookpost's own."""
    return (
        select(EventType.name)
        .where(EventType.archived.is_(False), ~EventType.name.startswith(OWN_PREFIX))
        .order_by(EventType.name)
    )


class NameTaken(HookpostError):
    """An event type with this name exists already."""

    code: ClassVar[str] = "event_type_exists"


async def find(session: AsyncSession, name: str) -> EventType | None:
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
