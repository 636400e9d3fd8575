"""The delivery log: deliveries and attempts filtered the ways operators ask, newest first.

Time filters become id bounds (ids are UUIDv7), so every filter runs on an index and, for
attempts, prunes the daily partitions outside the window.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost import ids
from hookpost.db.models import Attempt, Delivery, Endpoint, Event


@dataclass(frozen=True)
class DeliveryFilter:
    tenant_id: uuid.UUID | None = None
    endpoint_id: uuid.UUID | None = None
    event_id: uuid.UUID | None = None
    event_type: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class AttemptFilter:
    tenant_id: uuid.UUID | None = None
    endpoint_id: uuid.UUID | None = None
    delivery_id: uuid.UUID | None = None
    status_code: int | None = None
    error_kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def deliveries_query(where: DeliveryFilter) -> Select[tuple[Delivery]]:
    query = select(Delivery)
    if where.tenant_id is not None:
        query = query.where(Delivery.tenant_id == where.tenant_id)
    if where.endpoint_id is not None:
        query = query.where(Delivery.endpoint_id == where.endpoint_id)
    if where.event_id is not None:
        query = query.where(Delivery.event_id == where.event_id)
    if where.event_type is not None:
        query = query.where(Delivery.event_type == where.event_type)
    if where.status is not None:
        query = query.where(Delivery.status == where.status)
    if where.since is not None:
        query = query.where(Delivery.id >= ids.floor(where.since))
    if where.until is not None:
        query = query.where(Delivery.id < ids.floor(where.until))
    return query


def attempts_query(where: AttemptFilter) -> Select[tuple[Attempt]]:
    query = select(Attempt)
    if where.tenant_id is not None:
        query = query.where(Attempt.tenant_id == where.tenant_id)
    if where.endpoint_id is not None:
        query = query.where(Attempt.endpoint_id == where.endpoint_id)
    if where.delivery_id is not None:
        query = query.where(Attempt.delivery_id == where.delivery_id)
    if where.status_code is not None:
        query = query.where(Attempt.response_status == where.status_code)
    if where.error_kind is not None:
        query = query.where(Attempt.error_kind == where.error_kind)
    if where.since is not None:
        query = query.where(Attempt.id >= ids.floor(where.since))
    if where.until is not None:
        query = query.where(Attempt.id < ids.floor(where.until))
    return query


async def get_delivery(session: AsyncSession, delivery_id: uuid.UUID) -> Delivery | None:
    return await session.get(Delivery, delivery_id)


async def delivery_context(
    session: AsyncSession, delivery: Delivery
) -> tuple[Event, Endpoint, Sequence[Attempt]]:
    """The event, the endpoint (deleted ones too) and every attempt, oldest first."""
    event = await session.get(Event, delivery.event_id)
    endpoint = await session.get(Endpoint, delivery.endpoint_id)
    assert event is not None
    assert endpoint is not None
    attempts = await session.scalars(
        select(Attempt).where(Attempt.delivery_id == delivery.id).order_by(Attempt.id)
    )
    return event, endpoint, attempts.all()
