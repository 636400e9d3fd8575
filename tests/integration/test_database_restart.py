"""After the database drops every connection (as a restart or a failover does), the worker
listens again and delivery latency is back to its level before, not the poll interval:
measured through the API, from each event's ``created_at`` to its attempt's ``started_at``."""

import asyncio
import logging
import statistics
from datetime import datetime
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from hookpost.settings import Settings
from tests.integration.delivery_helpers import eventually, running_worker
from tests.integration.helpers import create_endpoint, create_event_type, create_tenant, ok
from tests.receiver import receiver

POLL_S = 5.0  # the default poll: what every delivery would wait without a listener
EVENTS = 5


async def _call(admin: AsyncClient, method: str, path: str, **options: Any) -> Any:
    """A request, as a client makes it: a 503 (the API's own pooled connections were dropped
    too) is tried again."""
    for _ in range(20):
        answer = await admin.request(method, path, **options)
        if answer.status_code != 503:
            return ok(answer, 202 if method == "POST" else 200)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{method} {path} kept answering 503")


async def _emit(admin: AsyncClient) -> str:
    body = {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {}}
    return str((await _call(admin, "POST", "/v1/events", json=body))["id"])


async def _latency_s(admin: AsyncClient, event_id: str) -> float:
    async def attempted() -> list[dict[str, str]] | None:
        event = await _call(admin, "GET", f"/v1/events/{event_id}")
        delivery = event["deliveries"][0]["id"]
        page = await _call(admin, "GET", f"/v1/deliveries/{delivery}/attempts")
        return page["data"] or None

    [attempt] = await eventually(attempted, timeout=POLL_S * 3)
    event = await _call(admin, "GET", f"/v1/events/{event_id}")
    started = datetime.fromisoformat(attempt["started_at"])
    return (started - datetime.fromisoformat(event["created_at"])).total_seconds()


async def _latencies(admin: AsyncClient) -> list[float]:
    return [await _latency_s(admin, await _emit(admin)) for _ in range(EVENTS)]


async def test_delivery_latency_comes_back_after_the_database_drops_every_connection(
    admin: AsyncClient,
    db: asyncpg.Connection,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="hookpost.delivery.worker")
    await create_tenant(admin, uid="acme")
    await create_event_type(admin, "invoice.paid")
    async with receiver() as target:
        await create_endpoint(admin, "acme", url=f"{target.url}/hook", event_types=["*"])
        async with running_worker(settings, worker_poll_s=POLL_S):
            before = await _latencies(admin)
            dropped = await db.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert dropped >= 3  # the worker's listener, claims and flushes at least

            async def listening_again() -> bool:
                return "listening for new deliveries again" in caplog.text

            await eventually(listening_again, timeout=10)
            after = await _latencies(admin)
    assert statistics.median(after) < POLL_S / 5, (before, after)
    assert statistics.median(after) < statistics.median(before) + 0.5, (before, after)


async def test_the_api_fails_one_request_not_one_per_pooled_connection(
    app: FastAPI, admin: AsyncClient, db: asyncpg.Connection
) -> None:
    """Every connection of the API's hot pool is dead after a restart: the first request that
    meets one answers 503, and the pool makes the others anew instead of failing a request
    with each of them."""
    await create_tenant(admin, uid="acme")
    await create_event_type(admin, "invoice.paid")
    pool: asyncpg.Pool = app.state.hookpost.pool
    held = [await pool.acquire() for _ in range(pool.get_max_size())]  # the pool full
    for connection in held:
        await pool.release(connection)
    await db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    body = {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {}}
    statuses = [(await admin.post("/v1/events", json=body)).status_code for _ in range(10)]
    assert statuses.count(503) <= 1, statuses
    assert statuses[-1] == 202, statuses
