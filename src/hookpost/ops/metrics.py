"""Prometheus metrics: gauges read from the database when ``/metrics`` is scraped (queue
depth, oldest due delivery, disabled endpoints), each from an index, so a scrape stays cheap
at any table size, and the exposition of every metric of the process (the counters are where
they are counted: ``ingest.metrics``, ``delivery.metrics``)."""

from dataclasses import dataclass

import asyncpg
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

QUEUE_DEPTH = Gauge(
    "hookpost_deliveries", "Deliveries waiting or being sent, by state.", ["status"]
)
QUEUE_DUE = Gauge("hookpost_queue_due", "Pending deliveries whose time has come.")
OLDEST_DUE_AGE = Gauge(
    "hookpost_queue_oldest_due_age_seconds",
    "How long the longest-waiting due delivery has been due (0 when none is).",
)
ENDPOINTS_DISABLED = Gauge("hookpost_endpoints_disabled", "Endpoints disabled now.")

# One pass over the pending deliveries (the partial index of the rare statuses) counts them,
# those due and the oldest due: with or without statistics, each pending row is read once.
_QUEUE_FIGURES = """
WITH pending AS (
  SELECT count(*) AS pending,
         count(*) FILTER (WHERE next_attempt_at <= now()) AS due,
         min(next_attempt_at) FILTER (WHERE next_attempt_at <= now()) AS oldest_due
  FROM deliveries WHERE status = 'pending'
)
SELECT
  pending.pending,
  (SELECT count(*) FROM deliveries WHERE status = 'in_flight') AS in_flight,
  (SELECT count(*) FROM deliveries WHERE lane IS NOT NULL AND status = 'waiting') AS waiting,
  pending.due,
  COALESCE(EXTRACT(EPOCH FROM now() - pending.oldest_due), 0)::float8 AS oldest_due_s,
  (SELECT count(*) FROM endpoints WHERE NOT enabled AND deleted_at IS NULL) AS disabled
FROM pending
"""


@dataclass(frozen=True)
class QueueFigures:
    pending: int
    in_flight: int
    waiting: int  # behind an unfinished delivery of their ordered lane
    due: int
    oldest_due_s: float  # how long the longest-waiting due delivery has been due
    disabled: int  # endpoints disabled now


async def queue_figures(connection: asyncpg.Connection) -> QueueFigures:
    """The queue's figures now, from one query over indexes."""
    row = await connection.fetchrow(_QUEUE_FIGURES)
    return QueueFigures(**dict(row))


async def read_queue_figures(connection: asyncpg.Connection) -> None:
    """Set the database-backed gauges from one query."""
    row = await connection.fetchrow(_QUEUE_FIGURES)
    QUEUE_DEPTH.labels("pending").set(row["pending"])
    QUEUE_DEPTH.labels("in_flight").set(row["in_flight"])
    QUEUE_DEPTH.labels("waiting").set(row["waiting"])
    QUEUE_DUE.set(row["due"])
    OLDEST_DUE_AGE.set(row["oldest_due_s"])
    ENDPOINTS_DISABLED.set(row["disabled"])


def exposition() -> tuple[bytes, str]:
    """The metrics in the Prometheus text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
