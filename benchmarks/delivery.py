"""Delivery throughput: the bare aiohttp ceiling, the drain of a backlog by one worker with
every attempt logged, and the same drain rate with a huge backlog (with the worker's memory)."""

import asyncio
import time
import uuid

import aiohttp
import asyncpg
import psutil

from benchmarks.seed import add_endpoint
from hookpost.db.engine import plain_dsn
from hookpost.delivery.signing import generate_secret, secret_bytes, sign
from hookpost.delivery.worker import Worker
from hookpost.encryption import SecretBox
from hookpost.ids import new_id
from hookpost.ingest.emit import EventIn, emit
from hookpost.settings import Settings

CONCURRENCY = 32
BODY = b'{"id":"evt_bench","type":"invoice.paid","timestamp":"2026-11-22T00:00:00Z","data":{}}'


async def ceiling(url: str, count: int) -> float:
    """Signed POSTs per second of a bare aiohttp loop: the most the machine gives."""
    key = secret_bytes(generate_secret())
    left = count
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def loop() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                timestamp = int(time.time())
                headers = {
                    "content-type": "application/json",
                    "webhook-id": "evt_bench",
                    "webhook-timestamp": str(timestamp),
                    "webhook-signature": sign([key], "evt_bench", timestamp, BODY),
                }
                async with session.post(url, data=BODY, headers=headers) as response:
                    await response.read()
                    assert response.status == 200

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(CONCURRENCY)))
        return count / (time.perf_counter() - started)


async def setup_tenant(connection: asyncpg.Connection, url: str, key: str) -> uuid.UUID:
    """A tenant with the event type invoice.paid and one endpoint at ``url`` receiving it."""
    tenant_id = new_id()
    await connection.execute(
        "INSERT INTO tenants (id, name, uid) VALUES ($1, 'bench', 'bench')", tenant_id
    )
    await connection.execute(
        "INSERT INTO event_types (id, name) VALUES ($1, 'invoice.paid') "
        "ON CONFLICT (name) DO NOTHING",
        new_id(),
    )
    # one fast receiver takes the whole run: its endpoint's limit must not be the bottleneck
    await add_endpoint(
        connection, tenant_id, url, SecretBox([key]), subscribes_to="*", max_in_flight=1000
    )
    return tenant_id


async def seed_with_emit(connection: asyncpg.Connection, tenant_id: uuid.UUID, count: int) -> None:
    """``count`` events (and so deliveries) through the ingest code, 1000 a transaction."""
    for start in range(0, count, 1000):
        async with connection.transaction():
            await emit(
                connection,
                [
                    EventIn(tenant_id, "invoice.paid", {"i": i}, None)
                    for i in range(start, min(start + 1000, count))
                ],
            )


SEED_SQL = """
WITH made AS (
    INSERT INTO events (id, tenant_id, event_type, body, payload_hash, created_at)
    SELECT hookpost_uuid7(), $1, 'invoice.paid',
           '{"id":"evt_bench","type":"invoice.paid","timestamp":"2026-11-22T00:00:00Z","data":{}}',
           '\\x00', now()
    FROM generate_series(1, $2)
    RETURNING id
)
INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type)
SELECT hookpost_uuid7(), made.id, $3, $1, 'invoice.paid' FROM made
"""


async def seed_with_sql(connection: asyncpg.Connection, tenant_id: uuid.UUID, count: int) -> None:
    """``count`` pending deliveries written by set-based SQL (fast enough for a million)."""
    endpoint_id = await connection.fetchval(
        "SELECT id FROM endpoints WHERE tenant_id = $1", tenant_id
    )
    for start in range(0, count, 100_000):
        await connection.execute(SEED_SQL, tenant_id, min(100_000, count - start), endpoint_id)
    # settle the fresh tables now, so that autovacuum does not run during the measurement
    await connection.execute("VACUUM (ANALYZE) events, deliveries")


def worker_settings(database_url: str, key: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=key,
        worker_concurrency=CONCURRENCY,
        log_level="warning",
        allowed_networks="127.0.0.0/8",  # the benchmark receiver is local
    )


async def drain(database_url: str, key: str, count: int) -> tuple[float, float]:
    """(deliveries per second, worker memory growth in MiB) of one worker delivering
    ``count`` of the pending deliveries; every attempt is logged before it returns."""
    process = psutil.Process()
    worker = Worker(worker_settings(database_url, key))
    stop = asyncio.Event()
    rss_before = process.memory_info().rss
    started = time.perf_counter()
    task = asyncio.create_task(worker.run(stop))
    deadline = started + 900
    while worker.delivered < count and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)  # a poll: the worker keeps no event for this count
    elapsed = time.perf_counter() - started
    rss_after = process.memory_info().rss
    stop.set()
    await task
    connection = await asyncpg.connect(plain_dsn(database_url))
    logged = await connection.fetchval("SELECT count(*) FROM attempts")
    await connection.close()
    assert logged >= count, f"{logged} attempts logged for {count} deliveries"
    return count / elapsed, (rss_after - rss_before) / 2**20
