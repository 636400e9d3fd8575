"""Hostile receivers beside a healthy tenant, generated: each example gives a new endpoint of a
hostile tenant answers drawn by hypothesis (``tests/hostile.py``), emits its events and a
healthy tenant's at the same time, and checks, while one worker runs throughout:

- every attempt is recorded, with a reason unless it succeeded, and no request went out
  without its attempt row;
- every delivery settles (succeeded or failed) within its policy;
- the healthy tenant's deliveries succeed exactly once, each signature verified by the
  ``standardwebhooks`` package;
- what is kept of an answer stays within its caps, and the worker's memory stays bounded.

The API, the worker and both receivers share one event loop in a thread of their own, so that
hypothesis runs each example on them without starting them again."""

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import asyncpg
import psutil
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from hookpost import ids
from hookpost.app import create_app
from hookpost.db.engine import plain_dsn
from hookpost.delivery.storable import MAX_HEADERS_TOTAL
from hookpost.delivery.worker import Worker
from hookpost.ops.events import OperationalEvents
from hookpost.settings import Settings
from tests.conftest import ADMIN_KEY, TABLES
from tests.hostile import Answer, HostileReceiver, answers
from tests.integration.delivery_helpers import FAST, eventually
from tests.integration.helpers import create_endpoint, create_event_type, create_tenant, ok
from tests.receiver import Receiver, receiver

T = TypeVar("T")
HOSTILE_EVENTS = 3
HEALTHY_EVENTS = 8
WORKER = FAST | {
    "delivery_timeout_s": 0.5,
    "delivery_read_timeout_s": 0.5,
    "worker_flush_s": 0.05,  # results of both tenants share flushes
    "breaker_threshold": 10_000,  # the harness is about storage and settling, not the breaker
}
MEMORY_GROWTH_BOUND = 200 * 2**20
NOT_KEPT = "the response was not kept"


class Harness:
    """The API, a worker, the healthy receiver and the hostile one, on a loop in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings.model_copy(update=WORKER)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.hostile = HostileReceiver()
        self.examples = 0

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        finally:
            future.cancel()  # a failed example leaves nothing running into the next

    async def start(self) -> None:
        self.app: FastAPI = create_app(self.settings)
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        self.admin = AsyncClient(
            transport=ASGITransport(app=self.app),
            base_url="http://test",
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
        )
        self._healthy_cm = receiver()
        self.healthy: Receiver = await self._healthy_cm.__aenter__()
        await self.hostile.start()
        self.db = await asyncpg.create_pool(
            plain_dsn(self.settings.database_url or ""), min_size=1, max_size=2
        )
        await create_event_type(self.admin, "invoice.paid")
        await create_tenant(self.admin, uid="healthy")
        await create_tenant(self.admin, uid="hostile")
        endpoint = await create_endpoint(
            self.admin, "healthy", url=f"{self.healthy.url}/ok", event_types=["*"]
        )
        secret = ok(await self.admin.get(f"/v1/endpoints/{endpoint['id']}/secret"))["key"]
        self.verifier = Webhook(secret)
        self.worker = Worker(self.settings, after_flush=OperationalEvents(self.settings))
        self._stop = asyncio.Event()
        self._worker_task = asyncio.create_task(self.worker.run(self._stop))

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.wait_for(self._worker_task, 30)
        await self.admin.aclose()
        await self._lifespan.__aexit__(None, None, None)
        await self._healthy_cm.__aexit__(None, None, None)
        await self.hostile.close()
        await self.db.execute(f"TRUNCATE {TABLES} CASCADE")
        await self.db.close()

    async def example(self, script: list[Answer]) -> None:
        self.examples += 1
        path = f"/hostile/{self.examples}"
        self.hostile.answers[path] = script
        endpoint = await create_endpoint(
            self.admin,
            "hostile",
            url=f"http://127.0.0.1:{self.hostile.port}{path}",
            event_types=["*"],
        )
        healthy_before = len(self.healthy.requests)
        emitted = await asyncio.gather(
            *(self._emit("hostile", n) for n in range(HOSTILE_EVENTS)),
            *(self._emit("healthy", n) for n in range(HEALTHY_EVENTS)),
        )
        events = [event_id for event_id in emitted]
        await self._settled(events)
        await self._check_hostile(ids.decode(ids.Prefix.ENDPOINT, endpoint["id"]), path)
        self._check_healthy(events[HOSTILE_EVENTS:], healthy_before)
        deleted = await self.admin.delete(f"/v1/endpoints/{endpoint['id']}")
        assert deleted.status_code == 204, deleted.text

    async def _emit(self, tenant: str, n: int) -> uuid.UUID:
        body = {"tenant_id": tenant, "event_type": "invoice.paid", "payload": {"n": n}}
        made = ok(await self.admin.post("/v1/events", json=body), 202)
        event_id = ids.decode(ids.Prefix.EVENT, made["id"])
        assert event_id is not None
        return event_id

    async def _settled(self, events: list[uuid.UUID]) -> None:
        """Wait until every delivery of ``events`` has succeeded or failed: 4 attempts at
        most, 0.5 s each at most, and the schedule's 0.35 s between them."""

        async def settled() -> bool:
            return not await self.db.fetchval(
                "SELECT count(*) FROM deliveries WHERE event_id = ANY($1) "
                "AND status NOT IN ('succeeded', 'failed')",
                events,
            )

        await eventually(settled, timeout=20)

    async def _check_hostile(self, endpoint_id: uuid.UUID | None, path: str) -> None:
        deliveries = await self.db.fetch(
            "SELECT id, status, attempt_count FROM deliveries WHERE endpoint_id = $1",
            endpoint_id,
        )
        assert len(deliveries) == HOSTILE_EVENTS
        attempts = await self.db.fetch(
            "SELECT delivery_id, response_status, error_kind, error_message, "
            "length(response_headers::text) AS headers_size, "
            "length(response_body) AS body_size FROM attempts WHERE endpoint_id = $1 "
            "ORDER BY attempt_number",
            endpoint_id,
        )
        for delivery in deliveries:
            rows = [row for row in attempts if row["delivery_id"] == delivery["id"]]
            assert 1 <= len(rows) == delivery["attempt_count"] <= FAST["retry_max_attempts"]
            if delivery["status"] == "succeeded":
                assert rows[-1]["error_kind"] is None
        for row in attempts:
            status = row["response_status"]
            if status is None or not 200 <= status < 300:
                assert row["error_kind"], dict(row)
                assert row["error_message"], dict(row)
            # the flush's last resort (a row kept without its response) is never needed for
            # what a receiver sends: the sender made all of it storable
            assert NOT_KEPT not in (row["error_message"] or ""), dict(row)
            assert (row["headers_size"] or 0) <= MAX_HEADERS_TOTAL * 1.5, dict(row)
            assert (row["body_size"] or 0) <= self.settings.response_body_cap_bytes
        # a request the receiver read has its attempt row (a request aiohttp could not send
        # on a connection the receiver closed has one too, hence at most)
        assert self.hostile.requests[path] <= len(attempts)

    def _check_healthy(self, events: list[uuid.UUID], before: int) -> None:
        arrived = self.healthy.requests[before:]
        ids_seen = [request.headers["webhook-id"] for request in arrived]
        wanted = {ids.encode(ids.Prefix.EVENT, event_id) for event_id in events}
        assert sorted(ids_seen) == sorted(wanted), "each healthy event exactly once"
        for request in arrived:
            self.verifier.verify(request.body, request.headers)


@pytest.fixture
def harness(settings: Settings, db: asyncpg.Connection) -> Iterator[Harness]:
    running = Harness(settings)
    running.run(running.start())
    try:
        yield running
    finally:
        running.run(running.stop())
        running.loop.call_soon_threadsafe(running.loop.stop)


@pytest.mark.timeout(400)
@hypothesis_settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(script=st.lists(answers(), min_size=1, max_size=4))
def test_a_hostile_receiver_never_reaches_its_neighbours(
    harness: Harness, script: list[Answer]
) -> None:
    process = psutil.Process()
    if harness.examples == 0:
        harness.baseline_rss = process.memory_info().rss  # type: ignore[attr-defined]
    harness.run(harness.example(script))
    growth = process.memory_info().rss - harness.baseline_rss  # type: ignore[attr-defined]
    assert growth < MEMORY_GROWTH_BOUND, f"the process grew by {growth / 2**20:.0f} MiB"
