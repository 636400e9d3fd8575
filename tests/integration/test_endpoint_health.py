"""Endpoint health and isolation against a real receiver: limits that defer, the circuit
breaker, disabling and re-enabling, and hookpost's operational events."""

import asyncio
import itertools
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
    """However many deliveries are leased ahead, no more requests than ``max_in_flight`` are
    open to the endpoint at once."""
    gauge = Concurrency(delay_s=0.05)
    async with receiver(gauge) as target:
        await _setup(admin, target.url, max_in_flight=3)
        await _emit_many(admin, 40)
        async with running_worker(settings, worker_concurrency=16, defer_s=0.02):

            async def all_done() -> bool:
                return await _count(db, "status = 'succeeded'") == 40

            await eventually(all_done, timeout=20)
    assert gauge.most == 3
    assert len(target.requests) == 40


async def _stats(admin: AsyncClient, endpoint_id: str) -> dict[str, Any]:
    return ok(await admin.get(f"/v1/endpoints/{endpoint_id}/stats"))


async def test_the_concurrency_limit_falls_on_timeouts_and_grows_back(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """An endpoint whose requests time out keeps one request open, not its max_in_flight;
    answering fast again, it earns its max_in_flight back. The stats and the metrics show the
    limit."""
    hanging = asyncio.Event()
    hanging.set()
    gauge = Concurrency(delay_s=0.05)
    hung: list[float] = []

    def script(n: int, request: Received) -> Reply:
        if hanging.is_set():
            hung.append(request.at)
            return Reply(delay_s=1.0)
        return gauge(n, request)

    async with receiver(script) as target:
        endpoint = await _setup(admin, target.url, max_in_flight=8)
        await _emit_many(admin, 60)
        overrides = {
            "delivery_timeout_s": 0.3,
            "retry_base_s": 0.01,
            "retry_cap_s": 0.05,
            "retry_max_attempts": 100,
            "breaker_threshold": 1000,
        }
        async with running_worker(settings, **overrides):

            async def cut_to_one() -> bool:
                return (await _stats(admin, endpoint["id"]))["concurrency_limit"] == 1

            await eventually(cut_to_one)
            hanging.clear()

            async def all_done() -> bool:
                return await _count(db, "status = 'succeeded'") == 60

            await eventually(all_done, timeout=30)
    # each hanging request stays open 0.3 s: no 0.25 s held more than the first limit of 2
    assert len(hung) >= 2
    assert all(later - earlier >= 0.25 for earlier, later in zip(hung, hung[2:], strict=False))
    assert gauge.most > 2
    assert gauge.most <= 8
    assert (await _stats(admin, endpoint["id"]))["concurrency_limit"] == 8
    exposition = (await admin.get("/metrics")).text
    gauge_line = f'hookpost_endpoint_concurrency_limit{{endpoint_id="{endpoint["id"]}"}} 8.0'
    assert gauge_line in exposition


async def test_hanging_endpoints_leave_room_for_the_others(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """Three endpoints that hang, allowed 10 requests each, beside a worker of 8 slots: a
    healthy endpoint's deliveries all arrive while the hanging requests are still open, not
    once they time out."""

    def script(n: int, request: Received) -> Reply:
        return Reply(delay_s=5.0) if "/hang/" in request.path else Reply()

    async with receiver(script) as target:
        await create_tenant(admin, uid="acme")
        await create_event_type(admin, "invoice.paid")
        await create_event_type(admin, "user.created")
        for n in range(3):
            await create_endpoint(
                admin, "acme", url=f"{target.url}/hang/{n}", event_types=["invoice.paid"]
            )
        await create_endpoint(admin, "acme", url=f"{target.url}/ok", event_types=["user.created"])
        hanging = [
            {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {"i": i}}
            for i in range(10)
        ]
        ok(await admin.post("/v1/events/batch", json={"events": hanging}), 202)
        async with running_worker(
            settings, worker_concurrency=8, delivery_timeout_s=4.0, worker_grace_s=0.1
        ):
            await eventually(lambda: _count(db, "status = 'in_flight'"))
            healthy = [
                {"tenant_id": "acme", "event_type": "user.created", "payload": {"i": i}}
                for i in range(20)
            ]
            ok(await admin.post("/v1/events/batch", json={"events": healthy}), 202)

            async def healthy_arrived() -> bool:
                return sum(r.path == "/ok" for r in target.requests) == 20

            await eventually(healthy_arrived, timeout=3.0)  # before any hanging one times out
        hung = [r for r in target.requests if "/hang/" in r.path]
        assert len(hung) <= 6  # the first limit of 2 for each hanging endpoint


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

            def gaps() -> list[float]:
                after = target.requests[count:]
                return [b.at - a.at for a, b in itertools.pairwise(after)]

            async def probing() -> bool:
                return sum(gap >= 0.45 for gap in gaps()) >= 3

            await eventually(probing)
            # once the deliveries leased before it opened are sent, one probe at a time, each
            # 0.5 s after the last, instead of ten deliveries retrying at once
            seen = gaps()
            first_probe = next(i for i, gap in enumerate(seen) if gap >= 0.45)
            assert all(gap >= 0.45 for gap in seen[first_probe:]), seen
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
    """Results that change nothing write nothing: no new row version for every flush. (The
    first flush reports the endpoint's concurrency limit; at its ceiling, it stays.)"""
    async with receiver() as target:
        await _setup(admin, target.url, max_in_flight=2)
        version = None
        async with running_worker(settings):
            for round_ in range(1, 5):  # a flush each at least

                async def recorded(expected: int = 5 * round_) -> bool:
                    return await _count(db, "status = 'succeeded'") == expected

                await _emit_many(admin, 5)
                await eventually(recorded)
                if round_ == 1:
                    version = await db.fetchval("SELECT xmin::text FROM endpoints")
    assert len(target.requests) == 20
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
        await create_event_type(admin, "user.created")
        await create_endpoint(
            admin, "acme", url=f"{target.url}/marker", event_types=["user.created"]
        )
        async with running_worker(settings):
            marker = {"tenant_id": "acme", "event_type": "user.created", "payload": {}}
            ok(await admin.post("/v1/events", json=marker), 202)
            await target.wait_for(1)  # the worker has looked at the queue: nothing else went
            assert [r.path for r in target.requests] == ["/marker"]
            ok(await admin.patch(path, json={"enabled": True}))
            await target.wait_for(4)

            async def resumed() -> bool:
                return await _count(db, "status = 'succeeded'") == 4  # and the marker

            await eventually(resumed)
            # the three emitted while disabled (the marker too) go out with a recovery
            since = "2026-01-01T00:00:00Z"
            answer = ok(await admin.post(f"{path}/recover", json={"since": since}))
            assert answer == {"queued": 3, "dry_run": False}
            await target.wait_for(7)


async def test_auto_disable_after_failing_too_long_with_operational_events(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver(lambda n, r: Reply(status=500)) as bad, receiver() as ops:
        endpoint = await _setup(admin, bad.url)
        await create_tenant(admin, uid="operations")
        await create_endpoint(admin, "operations", url=ops.url, event_types=["hookpost.*"])
        overrides = {
            "disable_after_s": 1.0,
            "breaker_threshold": 2,
            "breaker_probe_s": 0.1,
            "retry_base_s": 0.05,
            "retry_max_attempts": 3,
            "ops_tenant": "operations",
        }
        async with running_worker(settings, **overrides):
            await _emit_many(admin, 1)

            async def sent_types() -> set[str]:
                return {orjson.loads(r.body)["type"] for r in ops.requests}

            async def exhausted() -> bool:
                return "hookpost.delivery.exhausted" in await sent_types()

            # One delivery runs out of its attempts first; a delivery still pending when the
            # endpoint is disabled waits, and would never be exhausted (a race on a busy
            # machine).
            await eventually(exhausted, timeout=15)

            async def disabled() -> bool:
                shown = ok(await admin.get(f"/v1/endpoints/{endpoint['id']}"))
                if shown["enabled"]:
                    await _emit_many(admin, 1)  # attempts go on failing past the limit
                return not shown["enabled"]

            await eventually(disabled, timeout=15)

            async def ops_events() -> set[str]:
                types = await sent_types()
                wanted = {
                    "hookpost.endpoint.failing",
                    "hookpost.delivery.exhausted",
                    "hookpost.endpoint.disabled",
                }
                return types if wanted <= types else set()

            await eventually(ops_events, timeout=15)
    shown = ok(await admin.get(f"/v1/endpoints/{endpoint['id']}"))
    assert "every attempt failed for more than 1 s" in shown["disabled_reason"]
    by_type = {orjson.loads(r.body)["type"]: orjson.loads(r.body)["data"] for r in ops.requests}
    assert by_type["hookpost.endpoint.disabled"]["endpoint_id"] == endpoint["id"]
    assert by_type["hookpost.endpoint.failing"]["consecutive_failures"] >= 2
    exhausted = by_type["hookpost.delivery.exhausted"]
    assert exhausted["endpoint_id"] == endpoint["id"]
    assert exhausted["reason"] == "gave up after 3 attempts"
    assert exhausted["holds_lane"] is False  # an unordered endpoint's


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


async def test_a_new_url_starts_with_a_clean_slate(
    admin: AsyncClient, db: asyncpg.Connection
) -> None:
    """Fixing an endpoint's URL clears the failure streak and the open breaker, so the fixed
    receiver is not probed one delivery at a time."""
    endpoint = await _setup(admin, "https://example.com/old")
    await db.execute(
        "UPDATE endpoints SET consecutive_failures = 9, failing_since = now(), "
        "breaker_probe_at = now() + interval '30 seconds'"
    )
    path = f"/v1/endpoints/{endpoint['id']}"
    ok(await admin.patch(path, json={"description": "same URL"}))
    assert await db.fetchval("SELECT consecutive_failures FROM endpoints") == 9
    ok(await admin.patch(path, json={"url": "https://example.com/new"}))
    row = await db.fetchrow(
        "SELECT consecutive_failures, failing_since, breaker_probe_at FROM endpoints"
    )
    assert tuple(row) == (0, None, None)
