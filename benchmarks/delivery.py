"""Delivery throughput: the bare aiohttp ceiling, the drain of a backlog by worker processes
with every attempt logged, and the same drain rate with a huge backlog (with the workers'
memory)."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as EventType
from typing import Any

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
from hookpost.runtime import settle_gc
from hookpost.settings import Settings

CONCURRENCY = 32
WARM_UP = 500  # deliveries a worker makes before its memory is first read
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
    # One fast receiver takes the whole run: its endpoint's limit must not be the bottleneck.
    # In flight counts every leased delivery: those held ready behind the slots and those
    # answered but not yet flushed too. Two workers came near 1,000 of them, and 15% of
    # their claims took the limited path (a second round trip, fewer rows); measured.
    await add_endpoint(
        connection, tenant_id, url, SecretBox([key]), subscribes_to="*", max_in_flight=100_000
    )
    return tenant_id


async def seed_with_emit(connection: asyncpg.Connection, tenant_id: uuid.UUID, count: int) -> None:
    """``count`` events (and so deliveries) through the ingest code, 1000 a transaction, and
    no statistics gathered after: a user's young tables have none (this machine's Postgres
    runs with autovacuum off), and the worker's plans do not depend on them."""
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


def worker_settings(database_url: str, key: str, **overrides: Any) -> Settings:
    """The benchmark workers' settings: concurrency ``CONCURRENCY`` unless overridden."""
    defaults: dict[str, Any] = {
        "worker_concurrency": CONCURRENCY,
        "log_level": "warning",
        "allowed_networks": "127.0.0.0/8",  # the benchmark receiver is local
    }
    return Settings(database_url=database_url, secret_key=key, **(defaults | overrides))


def _worker_process(
    database_url: str,
    key: str,
    ready: EventType,
    start: EventType,
    stop: EventType,
    delivered: Synchronized[int],
    grown: Synchronized[float],
    cpu: Synchronized[float],
    overrides: dict[str, Any],
) -> None:
    """One worker process of a drain: says it is ``ready`` (imports done, the worker built
    and the collector settled, as ``hookpost worker`` does before it runs), waits for
    ``start``, delivers until ``stop``, keeps ``delivered`` and ``cpu`` (the CPU seconds it
    spent since ``start``) current, and leaves in ``grown`` how many MiB its memory grew after
    its first ``WARM_UP`` deliveries."""
    import uvloop

    worker = Worker(worker_settings(database_url, key, **overrides))
    settle_gc()

    async def run() -> None:
        process = psutil.Process()
        cpu_at_start = time.process_time()
        halt = asyncio.Event()
        rss_warm = None  # after the first deliveries: pools, sessions and caches are made
        task = asyncio.create_task(worker.run(halt))
        while not stop.is_set():
            cpu.value = time.process_time() - cpu_at_start
            delivered.value = worker.delivered
            if rss_warm is None and worker.delivered >= WARM_UP:
                rss_warm = process.memory_info().rss
            await asyncio.sleep(0.01)  # a poll: the figures are for the parent's progress
        delivered.value = worker.delivered
        cpu.value = time.process_time() - cpu_at_start
        if rss_warm is not None:
            grown.value = (process.memory_info().rss - rss_warm) / 2**20
        halt.set()
        await task

    ready.set()
    start.wait()
    uvloop.run(run())


@dataclass
class WorkerProcesses:
    """Worker processes started by ``worker_processes``: their progress, memory growth and
    CPU seconds since they started (growth once they stopped)."""

    delivered: list[Synchronized[int]]
    grown: list[Synchronized[float]]
    cpu: list[Synchronized[float]]

    @property
    def total_delivered(self) -> int:
        return sum(counter.value for counter in self.delivered)


@contextlib.contextmanager
def worker_processes(
    database_url: str, key: str, count: int, **overrides: Any
) -> Iterator[WorkerProcesses]:
    """``count`` worker processes on the database (``worker_settings`` with ``overrides``),
    started together once each has imported hookpost (the block begins then), stopped
    gracefully when the block ends."""
    context = multiprocessing.get_context("spawn")
    start, stop = context.Event(), context.Event()
    ready = [context.Event() for _ in range(count)]
    running = WorkerProcesses(
        [context.Value("q", 0) for _ in range(count)],
        [context.Value("d", 0.0) for _ in range(count)],
        [context.Value("d", 0.0) for _ in range(count)],
    )
    workers = [
        context.Process(
            target=_worker_process,
            args=(
                database_url,
                key,
                ready[i],
                start,
                stop,
                running.delivered[i],
                running.grown[i],
                running.cpu[i],
                overrides,
            ),
        )
        for i in range(count)
    ]
    for process in workers:
        process.start()
    try:
        for event in ready:
            assert event.wait(timeout=60), "a worker process did not start"
        start.set()
        yield running
    finally:
        stop.set()
        for process in workers:
            process.join(timeout=60)
    for process in workers:
        assert process.exitcode == 0, f"a worker process exited with {process.exitcode}"


@dataclass(frozen=True)
class Drained:
    """What a drain measured: deliveries per second, the largest memory growth of a worker,
    and CPU microseconds a delivery, of the workers and of everything else on the machine
    (Postgres and the receiver, mostly), with the shares of the machine's time it was busy
    and that its hypervisor took from it (steal: the machine is shared)."""

    rate: float
    grown_mib: float
    worker_us: float
    rest_us: float
    busy: float
    steal: float


def _machine_cpu_s() -> tuple[float, float]:
    """CPU seconds the whole machine has spent working (not idle, not waiting, not stolen),
    and those stolen from it."""
    times = psutil.cpu_times()
    worked = times.user + times.nice + times.system + times.irq + times.softirq
    return worked, getattr(times, "steal", 0.0)


def drain(database_url: str, key: str, count: int, processes: int = 1) -> Drained:
    """``processes`` worker processes delivering ``count`` of the pending deliveries, every
    attempt logged before it returns. The clock starts at the first delivery: before it, each
    process connects its pools to the database and prepares its statements (70-100 ms here,
    measured), which is a worker starting, not delivering; the rate is of the deliveries made
    after it."""
    with worker_processes(database_url, key, processes) as running:
        deadline = time.perf_counter() + 900
        while running.total_delivered == 0 and time.perf_counter() < deadline:
            time.sleep(0.001)
        started, (worked_at_start, stolen_at_start) = time.perf_counter(), _machine_cpu_s()
        delivered_at_start = running.total_delivered
        cpu_at_start = [cpu.value for cpu in running.cpu]
        while running.total_delivered < count and time.perf_counter() < deadline:
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        worked, stolen = _machine_cpu_s()
        made_by_now = running.total_delivered - delivered_at_start
    logged = asyncio.run(_count_attempts(database_url))
    assert logged >= count, f"{logged} attempts logged for {count} deliveries"
    span = elapsed * (os.cpu_count() or 1)
    machine_us = (worked - worked_at_start) / made_by_now * 1e6
    # the workers' own figures run from their first delivery to their stop, a little further
    worker_s = sum(cpu.value for cpu in running.cpu) - sum(cpu_at_start)
    worker_us = worker_s / (running.total_delivered - delivered_at_start) * 1e6
    return Drained(
        rate=(count - delivered_at_start) / elapsed,
        grown_mib=max(g.value for g in running.grown),
        worker_us=worker_us,
        rest_us=machine_us - worker_us,
        busy=(worked - worked_at_start) / span,
        steal=(stolen - stolen_at_start) / span,
    )


async def _count_attempts(database_url: str) -> int:
    connection = await asyncpg.connect(plain_dsn(database_url))
    try:
        return int(await connection.fetchval("SELECT count(*) FROM attempts"))
    finally:
        await connection.close()
