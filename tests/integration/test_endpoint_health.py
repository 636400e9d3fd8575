"""Endpoint health and isolation against a real receiver: limits that defer, the circuit
breaker, disabling and re-enabling, and hookpost's operational events."""

import asyncio
from typing import Any

import asyncpg
import orjson
from httpx import AsyncClient

from hookpost.settings import Settings
from tests.integration.delivery_helpers import eventually, running_worker
from tests.integration.helpers import create_endpoint, create_event_type, create_tenant, ok
from tests.receiver import Received, Reply, receiver


class Concurrency:
    """Counts requests under way at the receiver, and the most at once."""

    def __init__(self, delay_s: float, status: int = 200) -> None:
        self.delay_s, self.status = delay_s, status
        self.now = self.most = 0

    def __call__(self, n: int, request: Received) -> Reply:
        self.now += 1
        self.most = max(self.most, self.now)
        asyncio.get_running_loop().call_later(self.delay_s, self._done)
        return Reply(status=self.status, delay_s=self.delay_s)

    def _done(self) -> None:
        self.now -= 1


async def _setup(admin: AsyncClient, url: str, **endpoint: Any) -> dict[str, Any]:
    await create_tenant(admin, uid="acme")
    await create_event_type(admin, "invoice.paid")
    return await create_endpoint(admin, "acme", url=url, event_types=["*"], **endpoint)


async def _emit_many(admin: AsyncClient, count: int) -> None:
    batch = [
        {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {"i": i}}
        for i in range(count)
    ]
    ok(await admin.post("/v1/events/batch", json={"events": batch}), 202)


async def _count(db: asyncpg.Connection, where: str) -> int:
    return int(await db.fetchval(f"SELECT count(*) FROM deliveries WHERE {where}"))


async def test_max_in_flight_holds_across_the_worker(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    gauge = Concurrency(delay_s=0.1)
    async with receiver(gauge) as target:
        await _setup(admin, target.url, max_in_flight=2)
        await _emit_many(admin, 12)
        async with running_worker(settings, worker_concurrency=16, defer_s=0.02):
            await eventually(lambda: _count(db, "status = 'succeeded'"), timeout=20)

            async def all_done() -> bool:
                return await _count(db, "status = 'succeeded'") == 12

            await eventually(all_done, timeout=20)
    assert gauge.most == 2
    assert len(target.requests) == 12


async def test_rate_limit_spaces_requests(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver() as target:
        await _setup(admin, target.url, rate_limit_per_s=5)
        await _emit_many(admin, 15)
        async with running_worker(settings, defer_s=0.02):
            requests = await target.wait_for(15, timeout=20)
    times = sorted(r.at for r in requests)
    # a token bucket of one second: a burst of 5, then 5 a second, so the 15th request comes
    # about 2 s after the first, and no span of t seconds holds more than 5 + 5 t requests
    assert times[-1] - times[0] >= 1.7
    for i, start in enumerate(times):
        for j in range(i + 1, len(times)):
            assert j - i + 1 <= 5 + 5 * (times[j] - start) + 1, (i, j)


async def test_the_breaker_opens_probes_one_at_a_time_and_closes(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    healthy = asyncio.Event()

    def script(n: int, request: Received) -> Reply:
        return Reply() if healthy.is_set() else Reply(status=500)

    async with receiver(script) as target:
        endpoint = await _setup(admin, target.url)
        await _emit_many(admin, 10)
        overrides = {
            "breaker_threshold": 3,
            "breaker_probe_s": 0.5,
            "retry_base_s": 0.01,
            "retry_max_attempts": 50,
        }
        async with running_worker(settings, **overrides):

            async def opened() -> bool:
                failures = await db.fetchval("SELECT consecutive_failures FROM endpoints")
                return bool(failures >= 3)

            await eventually(opened)
            count = len(target.requests)
            await asyncio.sleep(1.2)
            probes = target.requests[count:]
            # at most one probe every 0.5 s, instead of ten deliveries retrying at once
            assert 1 <= len(probes) <= 4, len(probes)
            healthy.set()

            async def closed() -> bool:
                return await _count(db, "status = 'succeeded'") == 10

            await eventually(closed, timeout=10)
    row = await db.fetchrow("SELECT consecutive_failures, failing_since FROM endpoints")
    assert (row["consecutive_failures"], row["failing_since"]) == (0, None)
    assert ok(await admin.get(f"/v1/endpoints/{endpoint['id']}"))["enabled"] is True


async def test_successes_leave_a_healthy_endpoints_row_alone(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """Results that change nothing write nothing: no new row version for every flush."""
    async with receiver() as target:
        await _setup(admin, target.url)
        version = await db.fetchval("SELECT xmin::text FROM endpoints")
        async with running_worker(settings):
            for round_ in range(1, 4):  # a flush each at least

                async def recorded(expected: int = 5 * round_) -> bool:
                    return await _count(db, "status = 'succeeded'") == expected

                await _emit_many(admin, 5)
                await eventually(recorded)
    assert len(target.requests) == 15
    assert await db.fetchval("SELECT xmin::text FROM endpoints") == version


async def test_disable_pauses_and_enable_resumes(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver() as target:
        endpoint = await _setup(admin, target.url)
        await _emit_many(admin, 3)  # pending, no worker yet
        path = f"/v1/endpoints/{endpoint['id']}"
        ok(await admin.patch(path, json={"enabled": False, "disabled_reason": "maintenance"}))
        assert await _count(db, "status = 'failed' AND resume_on_enable") == 3
        await _emit_many(admin, 2)  # recorded failed while disabled; not resumed by enabling
        assert await _count(db, "status = 'failed' AND NOT resume_on_enable") == 2
        async with running_worker(settings):
            await asyncio.sleep(0.3)
            assert target.requests == []
            ok(await admin.patch(path, json={"enabled": True}))
            await target.wait_for(3)

            async def resumed() -> bool:
                return await _count(db, "status = 'succeeded'") == 3

            await eventually(resumed)
            # the two emitted while disabled go out with a recovery
            since = "2026-01-01T00:00:00Z"
            answer = ok(await admin.post(f"{path}/recover", json={"since": since}))
            assert answer == {"queued": 2, "dry_run": False}
            await target.wait_for(5)


async def test_auto_disable_after_failing_too_long_with_operational_events(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver(lambda n, r: Reply(status=500)) as bad, receiver() as ops:
        endpoint = await _setup(admin, bad.url)
        await create_tenant(admin, uid="operations")
        await create_endpoint(admin, "operations", url=ops.url, event_types=["hookpost.*"])
        await _emit_many(admin, 1)
        overrides = {
            "disable_after_s": 0.5,
            "breaker_threshold": 2,
            "breaker_probe_s": 0.1,
            "retry_base_s": 0.05,
            "retry_max_attempts": 3,
            "ops_tenant": "operations",
        }
        async with running_worker(settings, **overrides):
            await _emit_many(admin, 1)
            await asyncio.sleep(0.3)
            await _emit_many(admin, 1)

            async def disabled() -> bool:
                shown = ok(await admin.get(f"/v1/endpoints/{endpoint['id']}"))
                return not shown["enabled"]

            await eventually(disabled, timeout=15)

            async def ops_events() -> set[str]:
                types = {orjson.loads(r.body)["type"] for r in ops.requests}
                wanted = {
                    "hookpost.endpoint.failing",
                    "hookpost.delivery.exhausted",
                    "hookpost.endpoint.disabled",
                }
                return types if wanted <= types else set()

            await eventually(ops_events, timeout=15)
    shown = ok(await admin.get(f"/v1/endpoints/{endpoint['id']}"))
    assert "every attempt failed for more than 0.5 s" in shown["disabled_reason"]
    by_type = {orjson.loads(r.body)["type"]: orjson.loads(r.body)["data"] for r in ops.requests}
    assert by_type["hookpost.endpoint.disabled"]["endpoint_id"] == endpoint["id"]
    assert by_type["hookpost.endpoint.failing"]["consecutive_failures"] >= 2
    exhausted = by_type["hookpost.delivery.exhausted"]
    assert exhausted["endpoint_id"] == endpoint["id"]
    assert exhausted["reason"] == "gave up after 3 attempts"


async def test_410_emits_an_endpoint_disabled_event(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver(lambda n, r: Reply(status=410)) as gone, receiver() as ops:
        endpoint = await _setup(admin, gone.url)
        await create_tenant(admin, uid="operations")
        await create_endpoint(admin, "operations", url=ops.url, event_types=["*"])
        await _emit_many(admin, 1)
        async with running_worker(settings, ops_tenant="operations"):
            [event] = await ops.wait_for(1)
    body = orjson.loads(event.body)
    assert body["type"] == "hookpost.endpoint.disabled"
    assert body["data"]["endpoint_id"] == endpoint["id"]
    assert body["data"]["reason"] == "the endpoint answered 410 Gone"
