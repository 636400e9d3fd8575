"""Sending again: one delivery (a resend), the deliveries a filter selects (a bulk resend,
counted first), or an endpoint's failed deliveries of a time window after an outage; the bulk
ones in bounded batches that each commit on their own."""

import uuid
from datetime import datetime
from typing import ClassVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from hookpost import ids
from hookpost.db.engine import driver_connection, driver_connection_of
from hookpost.db.models import Delivery, Endpoint
from hookpost.delivery import queue
from hookpost.errors import HookpostError
from hookpost.ops import logs


class CannotResend(HookpostError):
    """A resend refused: its endpoint is disabled or deleted (``EndpointDisabled``), or the
    delivery is being sent right now (``DeliveryInFlight``)."""

    code: ClassVar[str] = "cannot_resend"


class EndpointDisabled(CannotResend):
    code: ClassVar[str] = "endpoint_disabled"


class DeliveryInFlight(CannotResend):
    code: ClassVar[str] = "delivery_in_flight"


async def resend(session: AsyncSession, delivery: Delivery, endpoint: Endpoint) -> Delivery:
    """Queue ``delivery`` now, whatever its state, in the session's transaction (the workers
    are woken when it commits); the delivery as it is then."""
    if not endpoint.enabled:
        raise EndpointDisabled("The endpoint is disabled or deleted: enable it first")
    if not await queue.resend(await driver_connection(session), delivery.id):
        raise DeliveryInFlight("The delivery is being sent right now")
    await session.refresh(delivery)
    return delivery


RECOVER_BATCH_SIZE = 1000


async def count_recoverable(
    engine: AsyncEngine, endpoint_id: uuid.UUID, *, since: datetime, until: datetime
) -> int:
    """How many failed deliveries of ``endpoint_id`` created in ``[since, until)`` ``recover``
    would queue again now."""
    async with engine.connect() as connection:
        raw = await driver_connection_of(connection)
        return await queue.count_recoverable(
            raw, endpoint_id, after=ids.floor(since), before=ids.floor(until)
        )


async def recover(
    engine: AsyncEngine,
    endpoint: Endpoint,
    *,
    since: datetime,
    until: datetime,
    batch_size: int = RECOVER_BATCH_SIZE,
) -> int:
    """Queue again every failed delivery of ``endpoint`` created in ``[since, until)``; how
    many. A disabled endpoint is refused (``EndpointDisabled``): what it recovered would only
    wait. Each batch is its own short transaction, so no lock is held for long."""
    if not endpoint.enabled:
        raise EndpointDisabled("The endpoint is disabled: enable it first")
    endpoint_id = endpoint.id
    after, before = ids.floor(since), ids.floor(until)
    total = 0
    async with engine.connect() as connection:
        raw = await driver_connection_of(connection)
        while True:
            async with raw.transaction():
                count = await queue.recover_batch(
                    raw, endpoint_id, after=after, before=before, limit=batch_size
                )
            await queue.promote_endpoint_lanes(raw, endpoint_id)
            total += count
            if count < batch_size:
                return total


# The most one bulk resend takes: past it, the operator narrows the filters.
BULK_RESEND_CAP = 10_000


async def count_matching(
    session: AsyncSession, where: logs.DeliveryFilter, *, cap: int = BULK_RESEND_CAP
) -> int:
    """How many deliveries ``where`` selects, counted up to ``cap + 1`` (more than the cap
    is all a bulk resend needs to know)."""
    picked = logs.deliveries_query(where).with_only_columns(Delivery.id).limit(cap + 1)
    return await session.scalar(select(func.count()).select_from(picked.subquery())) or 0


async def resend_matching(
    engine: AsyncEngine,
    where: logs.DeliveryFilter,
    *,
    cap: int = BULK_RESEND_CAP,
    batch_size: int = RECOVER_BATCH_SIZE,
) -> tuple[int, int]:
    """Queue again, newest first, up to ``cap`` deliveries ``where`` selects; how many were
    queued and how many were passed over (in flight, or their endpoint is disabled). Each
    batch commits on its own."""
    ids_of = logs.deliveries_query(where).with_only_columns(Delivery.id)
    queued = picked = 0
    last: uuid.UUID | None = None
    while picked < cap:
        page = ids_of if last is None else ids_of.where(Delivery.id < last)
        limit = min(batch_size, cap - picked)
        async with engine.begin() as connection:
            found = list(
                (await connection.execute(page.order_by(Delivery.id.desc()).limit(limit)))
                .scalars()
                .all()
            )
            if not found:
                break
            count, ordered = await queue.resend_many(await driver_connection_of(connection), found)
        async with engine.connect() as connection:
            raw = await driver_connection_of(connection)
            for endpoint_id in ordered:
                await queue.promote_endpoint_lanes(raw, endpoint_id)
        queued += count
        picked += len(found)
        last = found[-1]
        if len(found) < limit:
            break
    return queued, picked - queued
