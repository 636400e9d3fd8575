"""An endpoint's figures: deliveries by state over a window, success rate, the last attempt,
the backlog with the age of its oldest delivery, and the concurrency limit it has earned."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost import ids
from hookpost.db.models import Attempt, DeliveryStatus, Endpoint

_BY_STATUS = text(
    """
    SELECT status, count(*) AS n FROM deliveries
    WHERE endpoint_id = :endpoint_id AND id >= :after AND id < :before
    GROUP BY status
    """
)
# One branch per status, each on its own partial index (migrations 0006 and 0007); a single
# ``status IN (...)`` matches neither index.
_BACKLOG = text(
    """
    SELECT count(*) AS n, EXTRACT(EPOCH FROM now() - min(created_at))::float8 AS oldest_s
    FROM (
        SELECT created_at FROM deliveries
        WHERE endpoint_id = :endpoint_id AND status = 'pending'
        UNION ALL
        SELECT created_at FROM deliveries
        WHERE endpoint_id = :endpoint_id AND status = 'in_flight'
        UNION ALL
        SELECT created_at FROM deliveries
        WHERE endpoint_id = :endpoint_id AND lane IS NOT NULL AND status = 'waiting'
    ) backlog
    """
)
# Failed deliveries that hold their ordered lane (on the lane index, migration 0016).
_HELD_LANES = text(
    """
    SELECT count(*) FROM deliveries
    WHERE endpoint_id = :endpoint_id AND lane IS NOT NULL AND holds_lane AND status = 'failed'
    """
)


@dataclass(frozen=True)
class EndpointStats:
    counts: dict[str, int]
    success_rate: float | None  # succeeded / (succeeded + failed) in the window
    last_attempt: Attempt | None
    backlog: int  # pending, waiting in an ordered lane, and in flight now
    oldest_pending_age_s: float | None
    concurrency_limit: int | None  # as a worker last reported it; None before any attempt
    held_lanes: int  # ordered lanes held by a delivery that failed


async def endpoint_stats(
    session: AsyncSession, endpoint_id: uuid.UUID, *, since: datetime, until: datetime
) -> EndpointStats:
    window = {"endpoint_id": endpoint_id, "after": ids.floor(since), "before": ids.floor(until)}
    counts = dict.fromkeys(DeliveryStatus, 0) | {
        row.status: row.n for row in await session.execute(_BY_STATUS, window)
    }
    finished = counts[DeliveryStatus.SUCCEEDED] + counts[DeliveryStatus.FAILED]
    backlog = (await session.execute(_BACKLOG, {"endpoint_id": endpoint_id})).one()
    last = await session.scalar(
        select(Attempt)
        .where(Attempt.endpoint_id == endpoint_id)
        .order_by(Attempt.id.desc())
        .limit(1)
    )
    concurrency_limit = await session.scalar(
        select(Endpoint.concurrency_limit).where(Endpoint.id == endpoint_id)
    )
    return EndpointStats(
        counts={str(status): n for status, n in counts.items()},
        success_rate=counts[DeliveryStatus.SUCCEEDED] / finished if finished else None,
        last_attempt=last,
        backlog=backlog.n,
        oldest_pending_age_s=backlog.oldest_s,
        concurrency_limit=concurrency_limit,
        held_lanes=await session.scalar(_HELD_LANES, {"endpoint_id": endpoint_id}) or 0,
    )
