"""Ordered lanes on the real queue with a real receiver: each lane's deliveries reach the
endpoint one at a time in emit order, across concurrent workers, through retries and a
worker killed mid-lane; a delivery that runs out of attempts fails (the lane goes on) or
holds its lane until it is resent."""

import asyncio
import itertools
import signal
from collections import defaultdict
from typing import Any

import asyncpg
import orjson
from httpx import AsyncClient

from hookpost import ids
from hookpost.settings import Settings
from tests.integration.delivery_helpers import eventually, running_worker
from tests.integration.helpers import create_endpoint, create_event_type, create_tenant, ok
from tests.integration.test_worker_crash import _start_worker
from tests.receiver import Received, Reply, receiver

CUSTOMERS = ["c0", "c1", "c2", "c3", "c4"]


def _lanes(requests: list[Received]) -> dict[str, list[tuple[int, float]]]:
    """Per lane (the payload's customer), each request's event number and arrival."""
    found: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for request in requests:
        data = orjson.loads(request.body)["data"]
        found[data.get("customer", "")].append((data["i"], request.at))
    return found


async def _finished(db: asyncpg.Connection, count: int) -> bool:
    done = await db.fetchval("SELECT count(*) FROM deliveries WHERE status = 'succeeded'")
    return bool(done == count)


async def test_each_lane_goes_one_at_a_time_in_emit_order(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """Two workers, five customers' lanes and a keyless one; every fourth event's first
    attempt fails and is retried; the receiver takes 0 to 15 ms. Each lane's requests come
    in emit order, the next only after the last was answered 2xx."""
    failed_once: set[int] = set()
    delays: dict[int, float] = {}

    def script(n: int, request: Received) -> Reply:
        i = orjson.loads(request.body)["data"]["i"]
        delay = (i * 7 % 4) * 0.005
        if i % 4 == 1 and i not in failed_once:
            failed_once.add(i)
            return Reply(status=500, delay_s=delay)
        delays[i] = delay
        return Reply(delay_s=delay)

    async with receiver(script) as target:
        await create_tenant(admin, uid="acme")
        await create_event_type(admin, "invoice.paid")
        endpoint = await create_endpoint(
            admin,
            "acme",
            url=target.url,
            event_types=["*"],
            ordering={"key": "customer"},
            max_in_flight=50,
        )
        assert endpoint["ordering"] == {"key": "customer", "on_exhausted": "fail"}

        def event(i: int) -> dict[str, Any]:
            payload: dict[str, Any] = {"i": i}
            if i % 11:  # every eleventh has no customer: the lane ''
                payload["customer"] = CUSTOMERS[i % len(CUSTOMERS)]
            return {"tenant_id": "acme", "event_type": "invoice.paid", "payload": payload}

        async with running_worker(settings), running_worker(settings):
            for start in range(0, 60, 20):  # batches, while the workers run
                batch = [event(i) for i in range(start, start + 20)]
                ok(await admin.post("/v1/events/batch", json={"events": batch}), 202)
            for i in range(60, 100):  # and single events, one after another
                ok(await admin.post("/v1/events", json=event(i)), 202)
            await eventually(lambda: _finished(db, 100), timeout=60)

    lanes = _lanes(target.requests)
    assert set(lanes) == {*CUSTOMERS, ""}
    for lane, arrivals in lanes.items():
        numbers = [i for i, _ in arrivals]
        assert numbers == sorted(numbers), (lane, numbers)  # retries come before the next
        successes = [(i, at) for i, at in arrivals if i in delays]
        for (i, answered_at), (_, next_at) in itertools.pairwise(successes):
            assert next_at >= answered_at + delays[i] - 0.002, (lane, i)  # one at a time
    assert len(failed_once) == 25


async def _lane_setup(
    admin: AsyncClient, url: str, on_exhausted: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An ordered endpoint (one lane for the tenant, two attempts) and an unordered one."""
    await create_tenant(admin, uid="acme")
    await create_event_type(admin, "invoice.paid")
    ordered = await create_endpoint(
        admin,
        "acme",
        url=url + "/ordered",
        event_types=["invoice.paid"],
        ordering={"on_exhausted": on_exhausted},
        policy={"retry_max_attempts": 2, "retry_base_s": 0.05},
    )
    other = await create_endpoint(admin, "acme", url=url + "/other", event_types=["*"])
    return ordered, other


async def _emit(admin: AsyncClient, i: int) -> None:
    body = {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {"i": i}}
    ok(await admin.post("/v1/events", json=body), 202)


def _refuses(numbers: set[int]) -> Any:
    """A script: the ordered endpoint answers 500 to the events ``numbers`` (a set the test
    may empty), 200 to the rest."""

    def script(n: int, request: Received) -> Reply:
        i = orjson.loads(request.body)["data"]["i"]
        failing = request.path == "/ordered" and i in numbers
        return Reply(status=500 if failing else 200)

    return script


async def test_a_failed_delivery_lets_its_lane_go_on(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver(_refuses({1})) as target:
        await _lane_setup(admin, target.url, "fail")
        async with running_worker(settings):
            for i in range(3):
                await _emit(admin, i)
            await eventually(lambda: _finished(db, 3 + 2), timeout=20)
    ordered = [orjson.loads(r.body)["data"]["i"] for r in target.requests if r.path == "/ordered"]
    assert ordered == [0, 1, 1, 2]
    reason = await db.fetchval("SELECT status_reason FROM deliveries WHERE status = 'failed'")
    assert reason == "gave up after 2 attempts"


async def test_a_held_lane_waits_until_its_delivery_is_resent_or_released(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    refused = {1, 3}
    async with receiver(_refuses(refused)) as target:
        ordered, _ = await _lane_setup(admin, target.url, "hold")
        path = f"/v1/endpoints/{ordered['id']}"

        async def held() -> bool:
            return bool(
                await db.fetchval(
                    "SELECT count(*) FROM deliveries WHERE holds_lane AND status = 'failed'"
                )
            )

        async with running_worker(settings):
            for i in range(4):
                await _emit(admin, i)
            await eventually(held, timeout=20)
            # a later event reaches the other endpoint: the worker went on claiming, while
            # the held lane's next deliveries still wait
            await _emit(admin, 10)
            await eventually(lambda: _finished(db, 5 + 1), timeout=20)
            stats = ok(await admin.get(f"{path}/stats"))
            assert (stats["held_lanes"], stats["counts"]["waiting"]) == (1, 3)

            # the receiver is fixed and the failed delivery resent: the lane goes on, until
            # event 3 holds it in turn
            refused.discard(1)
            held_id = await db.fetchval("SELECT id FROM deliveries WHERE holds_lane")
            reason = await db.fetchval("SELECT status_reason FROM deliveries WHERE holds_lane")
            assert reason.endswith("it holds its ordered lane until it is resent")
            resend = f"/v1/deliveries/{ids.encode(ids.Prefix.DELIVERY, held_id)}/resend"
            ok(await admin.post(resend), 202)
            await eventually(lambda: _finished(db, 5 + 3), timeout=20)
            await eventually(held, timeout=20)
            assert ok(await admin.get(f"{path}/stats"))["held_lanes"] == 1

            # no longer holding: the lane goes on without a resend
            ok(await admin.patch(path, json={"ordering": {"on_exhausted": "fail"}}))
            await eventually(lambda: _finished(db, 5 + 4), timeout=20)
    ordered_seen = [
        orjson.loads(r.body)["data"]["i"] for r in target.requests if r.path == "/ordered"
    ]
    assert ordered_seen == [0, 1, 1, 1, 2, 3, 3, 10]


async def test_turning_ordering_off_lets_the_waiting_go(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver(_refuses(set())) as target:
        ordered, _ = await _lane_setup(admin, target.url, "fail")
        for i in range(5):  # no worker yet: the first is pending, the rest wait
            await _emit(admin, i)
        statuses = await db.fetch(
            "SELECT status, count(*) AS n FROM deliveries d JOIN endpoints e "
            "ON e.id = d.endpoint_id WHERE e.ordering IS NOT NULL GROUP BY status"
        )
        assert {row["status"]: row["n"] for row in statuses} == {"pending": 1, "waiting": 4}
        changed = ok(await admin.patch(f"/v1/endpoints/{ordered['id']}", json={"ordering": None}))
        assert changed["ordering"] is None
        assert await db.fetchval("SELECT count(*) FROM deliveries WHERE status = 'waiting'") == 0
        async with running_worker(settings):
            await eventually(lambda: _finished(db, 10), timeout=20)


async def test_a_worker_killed_mid_lane_keeps_the_order(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """A worker process is SIGKILLed while lanes are half sent; a second finishes them. A
    delivery the first had in flight may come twice (at-least-once), but a lane never moves
    past a delivery that was not answered, and never goes back."""
    async with receiver(lambda n, r: Reply(delay_s=0.01)) as target:
        await create_tenant(admin, uid="acme")
        await create_event_type(admin, "invoice.paid")
        await create_endpoint(
            admin, "acme", url=target.url, event_types=["*"], ordering={"key": "customer"}
        )
        batch = [
            {
                "tenant_id": "acme",
                "event_type": "invoice.paid",
                "payload": {"i": i, "customer": CUSTOMERS[i % len(CUSTOMERS)]},
            }
            for i in range(150)
        ]
        ok(await admin.post("/v1/events/batch", json={"events": batch}), 202)
        first = await _start_worker(settings)
        await target.wait_for(40, timeout=60)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        left = await db.fetchval("SELECT count(*) FROM deliveries WHERE status <> 'succeeded'")
        assert left > 0, "the first worker finished before it was killed"
        second = await _start_worker(settings)
        try:
            await eventually(lambda: _finished(db, 150), timeout=90)
        finally:
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), timeout=30) == 0
    for lane, arrivals in _lanes(target.requests).items():
        numbers = [i for i, _ in arrivals]
        distinct = list(dict.fromkeys(numbers))
        assert distinct == sorted(distinct), (lane, numbers)
        # a repeat is only ever the delivery just before: the one in flight at the kill
        for before, after in itertools.pairwise(numbers):
            assert after >= before, (lane, numbers)


async def test_a_lane_left_waiting_is_swept_up(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """A lane's first delivery finished in a transaction that could not see the next being
    stored (so the next was stored waiting, and nobody promoted it): the workers' sweep
    sends it, in order."""
    async with receiver(_refuses(set())) as target:
        await _lane_setup(admin, target.url, "fail")
        for i in range(3):
            await _emit(admin, i)
        first = await db.fetchval(
            "SELECT id FROM deliveries WHERE lane = '' AND status = 'pending'"
        )
        await db.execute("UPDATE deliveries SET status = 'succeeded' WHERE id = $1", first)
        assert await db.fetchval("SELECT count(*) FROM deliveries WHERE status = 'waiting'") == 2
        async with running_worker(settings):
            await eventually(lambda: _finished(db, 3 + 3), timeout=20)
    ordered_seen = [
        orjson.loads(r.body)["data"]["i"] for r in target.requests if r.path == "/ordered"
    ]
    assert ordered_seen == [1, 2]


async def test_deleting_an_ordered_endpoint_cancels_what_waits(
    admin: AsyncClient, db: asyncpg.Connection
) -> None:
    ordered, _ = await _lane_setup(admin, "http://127.0.0.1:9", "hold")
    for i in range(3):
        await _emit(admin, i)
    assert (await admin.delete(f"/v1/endpoints/{ordered['id']}")).status_code == 204
    rows = await db.fetch(
        "SELECT status, count(*) AS n FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id "
        "WHERE e.ordering IS NOT NULL GROUP BY status"
    )
    assert {row["status"]: row["n"] for row in rows} == {"pending": 1, "cancelled": 2}


async def test_a_recovery_puts_each_delivery_back_in_its_place(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """Two deliveries of a lane failed (the lane went on); once the receiver is fixed, a
    recovery sends them again in their order, the first of the lane pending and the next
    waiting behind it."""
    refused = {1, 2}
    async with receiver(_refuses(refused)) as target:
        ordered, _ = await _lane_setup(admin, target.url, "fail")
        async with running_worker(settings):
            for i in range(4):
                await _emit(admin, i)
            await eventually(lambda: _finished(db, 4 + 2), timeout=20)
        refused.clear()
        window = {"since": "2026-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}
        path = f"/v1/endpoints/{ordered['id']}/recover"
        assert ok(await admin.post(path, json=window))["queued"] == 2
        rows = await db.fetch("SELECT status FROM deliveries WHERE lane = '' ORDER BY event_id")
        assert [row["status"] for row in rows] == ["succeeded", "pending", "waiting", "succeeded"]
        async with running_worker(settings):
            await eventually(lambda: _finished(db, 4 + 4), timeout=20)
    ordered_seen = [
        orjson.loads(r.body)["data"]["i"] for r in target.requests if r.path == "/ordered"
    ]
    assert ordered_seen == [0, 1, 1, 2, 2, 3, 1, 2]
