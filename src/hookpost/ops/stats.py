"""An endpoint's figures: deliveries by state over a window, success rate, the last attempt,
the backlog with the age of its oldest delivery, and the concurrency limit it has earned; and
its attempts over time (by outcome, with latency p50 and p95) for the console's charts."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

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


# Attempts of one endpoint in slots of ``step_s`` seconds from ``since``: by outcome (no
# error; an answer that was not 2xx; no answer at all) and their latency. The id range keeps
# the read on the endpoint's attempt index (ids are time-ordered).
_SERIES = text(
    """
    SELECT floor(EXTRACT(EPOCH FROM started_at - :since) / :step_s)::int AS slot,
           count(*) FILTER (WHERE error_kind IS NULL) AS succeeded,
           count(*) FILTER (WHERE error_kind = 'http_status') AS refused,
           count(*) FILTER (WHERE error_kind IS NOT NULL AND error_kind <> 'http_status')
               AS unanswered,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50_ms,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_ms
    FROM attempts
    WHERE endpoint_id = :endpoint_id AND id >= :after AND started_at >= :since
    GROUP BY slot
    """
)

Span = Literal["hour", "day"]
# Each span in slots: the hour by the minute, the day by the quarter hour.
SLOTS: dict[Span, tuple[int, timedelta]] = {
    "hour": (60, timedelta(minutes=1)),
    "day": (96, timedelta(minutes=15)),
}


@dataclass(frozen=True)
class Slot:
    at: datetime  # when the slot starts, UTC
    succeeded: int
    refused: int  # answered, not with a 2xx
    unanswered: int  # timed out, refused the connection, blocked, ...
    p50_ms: float | None
    p95_ms: float | None

    @property
    def failed(self) -> int:
        return self.refused + self.unanswered


async def attempt_series(
    session: AsyncSession, endpoint_id: uuid.UUID, span: Span, *, now: datetime | None = None
) -> list[Slot]:
    """The endpoint's attempts over the last ``span``, oldest slot first; a slot without
    attempts is there too, empty."""
    count, step = SLOTS[span]
    now = now or datetime.now(UTC)
    last = datetime.fromtimestamp(
        now.timestamp() // step.total_seconds() * step.total_seconds(), UTC
    )
    since = last - step * (count - 1)
    rows = await session.execute(
        _SERIES,
        {
            "endpoint_id": endpoint_id,
            "after": ids.floor(since),
            "since": since,
            "step_s": step.total_seconds(),
        },
    )
    found = {row.slot: row for row in rows}
    series = []
    for n in range(count):
        row = found.get(n)
        series.append(
            Slot(
                at=since + step * n,
                succeeded=row.succeeded if row else 0,
                refused=row.refused if row else 0,
                unanswered=row.unanswered if row else 0,
                p50_ms=row.p50_ms if row else None,
                p95_ms=row.p95_ms if row else None,
            )
        )
    return series
