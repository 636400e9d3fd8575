"""Retention and partition upkeep, run periodically (``keep_up``) by every process that runs a
worker, one runner at a time (a Postgres advisory lock):

- the daily partitions of ``attempts`` are created a few days ahead;
- attempts older than their retention go: whole partitions are dropped (no bulk DELETE, no
  bloat), and the few expired rows of the partition that straddles the cutoff are deleted in
  small batches;
- events older than their retention whose deliveries are all finished go with their
  deliveries and those deliveries' attempts, in small batches, so no lock is held for long;
- the per-minute attempt counts of the console's chart are kept a day.
"""

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from hookpost import ids
from hookpost.db.engine import DATABASE_ERRORS, plain_dsn, rows_affected
from hookpost.settings import Settings

logger = logging.getLogger(__name__)

LOCK_KEY = 0x686F6F6B  # "hook": the advisory lock that elects the runner
BATCH_SIZE = 5000
_PARTITION = re.compile(r"^attempts_p(\d{8})$")

CREATE_PARTITIONS = "SELECT hookpost_create_attempt_partitions($1::date, $2::date)"
LIST_PARTITIONS = """
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'attempts'::regclass
"""
DELETE_OLD_MINUTES = "DELETE FROM attempt_minutes WHERE minute < now() - interval '1 day'"
DELETE_EXPIRED_ATTEMPTS = """
DELETE FROM attempts WHERE id IN (SELECT id FROM attempts WHERE id < $1 LIMIT $2)
"""
# The deliveries go by their foreign key's cascade; their attempts (which have no foreign keys,
# migration 0005) are deleted alongside. An attempt's id is never below its delivery's.
DELETE_EXPIRED_EVENTS = """
WITH picked AS (
    SELECT e.id FROM events e
    WHERE e.id < $1
      AND NOT EXISTS (
        SELECT 1 FROM deliveries d
        WHERE d.event_id = e.id AND d.status IN ('pending', 'in_flight', 'waiting')
      )
    LIMIT $2
),
their_attempts AS (
    DELETE FROM attempts a USING deliveries d
    WHERE d.event_id IN (SELECT id FROM picked) AND a.delivery_id = d.id AND a.id >= d.id
)
DELETE FROM events WHERE id IN (SELECT id FROM picked)
"""


@dataclass(frozen=True)
class RetentionReport:
    partitions_created: int
    partitions_dropped: int
    attempts_deleted: int
    events_deleted: int


async def _delete_in_batches(connection: asyncpg.Connection, statement: str, bound: object) -> int:
    total = 0
    while True:
        count = rows_affected(await connection.execute(statement, bound, BATCH_SIZE))
        total += count
        if count < BATCH_SIZE:
            return total


async def _drop_expired_partitions(connection: asyncpg.Connection, cutoff: datetime) -> int:
    dropped = 0
    for row in await connection.fetch(LIST_PARTITIONS):
        match = _PARTITION.match(row["relname"])
        if match is None:
            continue
        day = datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=UTC)
        if day + timedelta(days=1) <= cutoff:
            await connection.execute(f'DROP TABLE "{row["relname"]}"')
            dropped += 1
    return dropped


async def run_retention(
    connection: asyncpg.Connection,
    *,
    attempt_retention_s: float,
    event_retention_s: float,
    days_ahead: int,
    now: datetime | None = None,
) -> RetentionReport | None:
    """One pass of upkeep; None when another worker holds the runner's lock."""
    if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
        return None
    try:
        now = now or datetime.now(UTC)
        today = now.date()
        created = await connection.fetchval(
            CREATE_PARTITIONS, today - timedelta(days=1), today + timedelta(days=days_ahead)
        )
        attempt_cutoff = now - timedelta(seconds=attempt_retention_s)
        dropped = await _drop_expired_partitions(connection, attempt_cutoff)
        attempts = await _delete_in_batches(
            connection, DELETE_EXPIRED_ATTEMPTS, ids.floor(attempt_cutoff)
        )
        events = await _delete_in_batches(
            connection,
            DELETE_EXPIRED_EVENTS,
            ids.floor(now - timedelta(seconds=event_retention_s)),
        )
        await connection.execute(DELETE_OLD_MINUTES)
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    report = RetentionReport(created, dropped, attempts, events)
    if any(vars(report).values()):
        logger.info("retention: %s", report)
    return report


async def keep_up(settings: Settings, stop: asyncio.Event) -> None:
    """Run upkeep now and every ``maintenance_interval_s`` until ``stop`` is set, on a
    connection of its own for each pass; a pass that fails is logged and tried again at the
    next interval."""
    assert settings.database_url, "upkeep needs settings.database_url"
    day = 86400.0
    while not stop.is_set():
        try:
            connection = await asyncpg.connect(plain_dsn(settings.database_url))
            try:
                await run_retention(
                    connection,
                    attempt_retention_s=settings.attempt_retention_days * day,
                    event_retention_s=settings.event_retention_days * day,
                    days_ahead=settings.partition_days_ahead,
                )
            finally:
                await connection.close()
        except DATABASE_ERRORS as error:
            logger.warning("retention failed: %s", error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.maintenance_interval_s)
