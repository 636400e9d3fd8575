"""Recovering an endpoint's failed deliveries of a time window after an outage, in bounded
batches that each commit on their own."""

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from hookpost import ids
from hookpost.db.engine import driver_connection_of
from hookpost.delivery import queue

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
    endpoint_id: uuid.UUID,
    *,
    since: datetime,
    until: datetime,
    batch_size: int = RECOVER_BATCH_SIZE,
) -> int:
    """Queue again every failed delivery of ``endpoint_id`` created in ``[since, until)``.
    Each batch is its own short transaction, so no lock is held for long; how many."""
    after, before = ids.floor(since), ids.floor(until)
    total = 0
    async with engine.connect() as connection:
        raw = await driver_connection_of(connection)
        while True:
            async with raw.transaction():
                count = await queue.recover_batch(
                    raw, endpoint_id, after=after, before=before, limit=batch_size
                )
            total += count
            if count < batch_size:
                return total
