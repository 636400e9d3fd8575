"""Isolation: 100 endpoints of which 20 hang until the delivery timeout, beside the same run
with all 100 healthy. Events are emitted at a fixed rate, each to one endpoint in turn; the
figures are the healthy endpoints' deliveries per second and their accept-to-receive latency.
``python -m benchmarks isolation``."""

import asyncio
import time

import asyncpg
import httpx

from benchmarks.delivery import worker_processes
from benchmarks.seed import add_endpoint
from hookpost.db.engine import plain_dsn
from hookpost.delivery.queue import NOTIFY
from hookpost.encryption import SecretBox
from hookpost.ids import new_id
from hookpost.ingest.emit import EventIn, emit

ENDPOINTS = 100
HANGING = 20
RATE = 1000  # events a second
SECONDS = 10
TIMEOUT_S = 5.0
WORKER_CONCURRENCY = 512  # the default


async def _setup(connection: asyncpg.Connection, base: str, box: SecretBox, hang: bool) -> object:
    await connection.execute("TRUNCATE tenants, event_types CASCADE")
    tenant_id = new_id()
    await connection.execute("INSERT INTO tenants (id, name) VALUES ($1, 'bench')", tenant_id)
    for i in range(ENDPOINTS):
        kind = "hang" if hang and i < HANGING else ("healthy" if i >= HANGING else "other")
        await connection.execute(
            "INSERT INTO event_types (id, name) VALUES ($1, $2)", new_id(), f"bench.e{i}"
        )
        await add_endpoint(
            connection, tenant_id, f"{base}/{kind}/{i}", box, subscribes_to=f"bench.e{i}"
        )
    return tenant_id


async def _emit_for(connection: asyncpg.Connection, tenant_id: object) -> int:
    """``RATE`` events a second for ``SECONDS``, each to the next endpoint; how many."""
    tick = 0.1
    per_tick = int(RATE * tick)
    started = time.perf_counter()
    sent = 0
    for step in range(int(SECONDS / tick)):
        events = [
            EventIn(tenant_id, f"bench.e{(sent + i) % ENDPOINTS}", {"n": sent + i}, None)  # type: ignore[arg-type]
            for i in range(per_tick)
        ]
        async with connection.transaction():
            await emit(connection, events)
        await connection.execute(NOTIFY)  # as the API does once the events are committed
        sent += per_tick
        await asyncio.sleep(max(0.0, started + (step + 1) * tick - time.perf_counter()))
    return sent


async def _healthy_latencies(base: str, expected: int) -> list[float]:
    """The receiver's accept-to-receive latencies of healthy endpoints, once ``expected`` came
    (or a minute passed)."""
    got: list[float] = []
    async with httpx.AsyncClient() as client:
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline and len(got) < expected:
            await asyncio.sleep(0.2)
            got += (await client.get(f"{base}/stats")).json().get("healthy", [])
    return got


async def one_run(
    database_url: str, base: str, key: str, *, hang: bool
) -> tuple[float, float, float]:
    """(healthy deliveries per second, p50 and p99 latency in ms) of one run."""
    box = SecretBox([key])
    connection = await asyncpg.connect(plain_dsn(database_url))
    tenant_id = await _setup(connection, base, box, hang)
    # one worker process with the default concurrency, as deployed
    with worker_processes(
        database_url, key, 1, worker_concurrency=WORKER_CONCURRENCY, delivery_timeout_s=TIMEOUT_S
    ):
        started = time.perf_counter()
        sent = await _emit_for(connection, tenant_id)
        healthy_expected = sent * (ENDPOINTS - HANGING) // ENDPOINTS
        got = await _healthy_latencies(base, healthy_expected)
        elapsed = time.perf_counter() - started
    await connection.close()
    got.sort()
    p50 = got[len(got) // 2] * 1000
    p99 = got[int(len(got) * 0.99) - 1] * 1000
    return len(got) / elapsed, p50, p99


async def run(database_url: str, base: str, key: str) -> list[tuple[str, float, float, float]]:
    healthy = await one_run(database_url, base, key, hang=False)
    hanging = await one_run(database_url, base, key, hang=True)
    return [("all 100 healthy", *healthy), (f"{HANGING} of 100 hanging", *hanging)]
