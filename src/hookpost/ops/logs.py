"""The delivery log: deliveries and attempts filtered the ways operators ask, newest first.

Time filters become id bounds (ids are UUIDv7), so every filter runs on an index and, for
attempts, prunes the daily partitions outside the window. A delivery status is written into
the statement as a literal: the status indexes hold only the rare statuses (migration 0007),
and only a literal lets every plan, generic ones included, prove that such an index covers it.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import TypeVar

from sqlalchemy import BindParameter, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from hookpost import ids
from hookpost.access import Viewer
from hookpost.db.models import Attempt, Delivery, Endpoint, Event

Row = TypeVar("Row", Delivery, Attempt)


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


def _filtered(
    query: Select[Row], model: type[Row], where: object, columns: dict[str, str]
) -> Select[Row]:
    """``query`` narrowed by every filter of ``where`` that is set: equality on the column
    the field names (``columns`` renames), and the ``since``/``until`` window as id bounds."""
    id_column: InstrumentedAttribute[uuid.UUID] = model.id
    for field in fields(where):  # type: ignore[arg-type]
        value = getattr(where, field.name)
        if value is None:
            continue
        if field.name == "since":
            query = query.where(id_column >= ids.floor(value))
        elif field.name == "until":
            query = query.where(id_column < ids.floor(value))
        else:
            query = query.where(getattr(model, columns.get(field.name, field.name)) == value)
    return query


def deliveries_query(where: DeliveryFilter) -> Select[Delivery]:
    query = _filtered(select(Delivery), Delivery, replace(where, status=None), {})
    if where.status is not None:  # one of DeliveryStatus: the API checked it
        status: BindParameter[str] = bindparam("status", where.status, literal_execute=True)
        query = query.where(Delivery.status == status)
    return query


def attempts_query(where: AttemptFilter) -> Select[Attempt]:
    return _filtered(select(Attempt), Attempt, where, {"status_code": "response_status"})


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


async def visible_delivery(session: AsyncSession, viewer: Viewer, ref: str) -> Delivery:
    """The delivery ``ref`` (``dlv_...``) names, as ``viewer`` may see it (else NotFound)."""
    delivery_id = ids.decode(ids.Prefix.DELIVERY, ref)
    found = None if delivery_id is None else await get_delivery(session, delivery_id)
    return viewer.seen("delivery", ref, found, found.tenant_id if found else None)
