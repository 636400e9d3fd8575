"""Reading emitted events back, with the state of each of their deliveries."""

import uuid
from collections.abc import Sequence

from sqlalchemy import Select, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost.db.models import Delivery, Event


def list_query(tenant_id: uuid.UUID | None, event_type: str | None) -> Select[Event]:
    query = select(Event)
    if tenant_id is not None:
        query = query.where(Event.tenant_id == tenant_id)
    if event_type is not None:
        query = query.where(Event.event_type == event_type)
    return query


async def get(session: AsyncSession, event_id: uuid.UUID) -> Event | None:
    return await session.get(Event, event_id)


# The body as its text, the very bytes every attempt sends (the worker reads it so too).
_BODY_SENT = text("SELECT body::text FROM events WHERE id = :event_id")


async def body_sent(session: AsyncSession, event_id: uuid.UUID) -> str:
    """The webhook body of ``event_id`` exactly as it goes out, not re-serialised."""
    return str(await session.scalar(_BODY_SENT, {"event_id": event_id}))


async def deliveries_of(
    session: AsyncSession, event_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Delivery]]:
    """Each event's deliveries, oldest first."""
    found: dict[uuid.UUID, list[Delivery]] = {event_id: [] for event_id in event_ids}
    rows = await session.scalars(
        select(Delivery).where(Delivery.event_id.in_(event_ids)).order_by(Delivery.id)
    )
    for delivery in rows:
        found[delivery.event_id].append(delivery)
    return found
