"""Retention removes exactly what has expired: attempts by dropping whole daily partitions
and trimming the one that straddles the cutoff; finished events with their deliveries and
those deliveries' attempts."""

from datetime import UTC, date, datetime, timedelta

import asyncpg
from httpx import AsyncClient

from hookpost import ids
from hookpost.db.engine import plain_dsn
from hookpost.ops.retention import LOCK_KEY, run_retention
from tests.integration.helpers import create_endpoint, create_event_type, create_tenant, ok

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DAY = 86400.0


async def _partitions(db: asyncpg.Connection) -> set[str]:
    rows = await db.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'attempts'::regclass"
    )
    return {row["relname"] for row in rows}


async def _seed(admin: AsyncClient, db: asyncpg.Connection) -> tuple[object, object, object]:
    await create_tenant(admin, uid="acme")
    await create_event_type(admin, "invoice.paid")
    await create_endpoint(admin, "acme", event_types=["*"])
    ok(
        await admin.post(
            "/v1/events", json={"tenant_id": "acme", "event_type": "invoice.paid", "payload": {}}
        ),
        202,
    )
    return (
        await db.fetchval("SELECT id FROM deliveries"),
        await db.fetchval("SELECT endpoint_id FROM deliveries"),
        await db.fetchval("SELECT tenant_id FROM deliveries"),
    )


async def _insert_attempt(db: asyncpg.Connection, delivery_id: object, at: datetime) -> None:
    """An attempt of ``delivery_id`` made at ``at`` (its partition must exist)."""
    await db.execute(
        "INSERT INTO attempts (id, delivery_id, endpoint_id, tenant_id, attempt_number, "
        "started_at, duration_ms, request_headers, worker_id) "
        "SELECT $1, id, endpoint_id, tenant_id, 1, $2, 1, '{}', 'w' FROM deliveries WHERE id = $3",
        ids.id_at(at),
        at,
        delivery_id,
    )


async def test_attempts_expire_exactly(admin: AsyncClient, db: asyncpg.Connection) -> None:
    delivery_id, _, _ = await _seed(admin, db)
    await db.execute(
        "SELECT hookpost_create_attempt_partitions($1::date, $2::date)",
        date(2026, 10, 10),
        date(2026, 11, 22),
    )
    ages_h = [24 * 40, 24 * 31, 24 * 30 + 1, 24 * 30 - 1, 24 * 29, 24, 0.5]
    for age in ages_h:
        await _insert_attempt(db, delivery_id, NOW - timedelta(hours=age))
    report = await run_retention(
        db, attempt_retention_s=30 * DAY, event_retention_s=300 * DAY, days_ahead=3, now=NOW
    )
    assert report is not None
    cutoff = NOW - timedelta(days=30)
    left = await db.fetch("SELECT started_at FROM attempts ORDER BY started_at")
    assert [r["started_at"] for r in left] == sorted(
        NOW - timedelta(hours=a) for a in ages_h if NOW - timedelta(hours=a) >= cutoff
    )
    partitions = await _partitions(db)
    assert "attempts_p20261010" not in partitions  # wholly expired: dropped
    assert "attempts_p20261022" not in partitions
    assert "attempts_p20261023" in partitions  # straddles the cutoff: trimmed
    assert "attempts_p20261125" in partitions  # made ahead
    assert report.partitions_dropped >= 13
    assert report.attempts_deleted == 1  # the 30 days + 1 hour row of the straddling day


async def test_finished_events_expire_with_their_deliveries(
    admin: AsyncClient, db: asyncpg.Connection
) -> None:
    await _seed(admin, db)
    old = datetime.now(UTC) - timedelta(days=31)
    event_id = await db.fetchval("SELECT id FROM events")
    # the same event, backdated, once delivered and once still pending
    finished, unfinished = ids.id_at(old), ids.id_at(old + timedelta(seconds=1))
    attempted_at = datetime.now(UTC) + timedelta(seconds=1)  # after the deliveries' ids
    await db.execute(
        "SELECT hookpost_create_attempt_partitions($1::date, $2::date)",
        attempted_at.date(),
        attempted_at.date(),
    )
    delivery_of = {}
    for new_id, status in ((finished, "succeeded"), (unfinished, "pending")):
        await db.execute(
            "INSERT INTO events (id, tenant_id, event_type, body, payload_hash, created_at) "
            "SELECT $1, tenant_id, event_type, body, payload_hash, $2 FROM events WHERE id = $3",
            new_id,
            old,
            event_id,
        )
        delivery_of[new_id] = await db.fetchval(
            "INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status) "
            "SELECT hookpost_uuid7(), $1, endpoint_id, tenant_id, event_type, $2 "
            "FROM deliveries WHERE event_id = $3 RETURNING id",
            new_id,
            status,
            event_id,
        )
        await _insert_attempt(db, delivery_of[new_id], attempted_at)
    report = await run_retention(
        db, attempt_retention_s=30 * DAY, event_retention_s=30 * DAY, days_ahead=3
    )
    assert report is not None
    assert report.events_deleted == 1
    left = {r["id"] for r in await db.fetch("SELECT id FROM events")}
    assert left == {event_id, unfinished}
    assert await db.fetchval("SELECT count(*) FROM deliveries WHERE event_id = $1", finished) == 0
    attempted = {r["delivery_id"] for r in await db.fetch("SELECT delivery_id FROM attempts")}
    assert attempted == {delivery_of[unfinished]}  # the expired delivery's attempt went with it


async def test_one_runner_at_a_time(
    admin: AsyncClient, db: asyncpg.Connection, database_url: str
) -> None:
    other = await asyncpg.connect(plain_dsn(database_url))
    try:
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)
        assert (
            await run_retention(db, attempt_retention_s=DAY, event_retention_s=DAY, days_ahead=1)
            is None
        )
    finally:
        await other.close()


async def test_the_charts_minutes_are_kept_a_day(db: asyncpg.Connection) -> None:
    await db.execute(
        "INSERT INTO attempt_minutes (minute, worker_id, succeeded, failed) VALUES "
        "(date_trunc('minute', now()) - interval '25 hours', 'w', 1, 0), "
        "(date_trunc('minute', now()) - interval '23 hours', 'w', 2, 0)"
    )
    await run_retention(db, attempt_retention_s=30 * DAY, event_retention_s=30 * DAY, days_ahead=1)
    assert await db.fetchval("SELECT array_agg(succeeded) FROM attempt_minutes") == [2]
