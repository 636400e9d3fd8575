"""A worker process killed with SIGKILL mid-run loses nothing: its leased deliveries are
taken back (once its heartbeat stops, or after the lease), and a second worker finishes the
run (at-least-once)."""

import asyncio
import os
import signal
import sys

import asyncpg
from httpx import AsyncClient

from hookpost.settings import Settings
from tests.integration.delivery_helpers import FAST, eventually
from tests.integration.helpers import create_endpoint, create_event_type, create_tenant, ok
from tests.receiver import Reply, receiver


async def _start_worker(settings: Settings, **overrides: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKPOST_")}
    env |= {f"HOOKPOST_{k.upper()}": str(v) for k, v in FAST.items()}
    assert settings.database_url
    assert settings.secret_key
    env |= {
        "HOOKPOST_DATABASE_URL": settings.database_url,
        "HOOKPOST_SECRET_KEY": settings.secret_key.get_secret_value(),
        "HOOKPOST_LEASE_S": "2",
        "HOOKPOST_ALLOWED_NETWORKS": settings.allowed_networks,
        "HOOKPOST_LOG_LEVEL": "warning",
    }
    env |= {f"HOOKPOST_{k.upper()}": v for k, v in overrides.items()}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hookpost", "worker", "--concurrency", "16", env=env
    )


async def test_sigkill_mid_run_loses_no_delivery(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver(lambda n, r: Reply(delay_s=0.005)) as target:
        await create_tenant(admin, uid="acme")
        await create_event_type(admin, "invoice.paid")
        for path in ("/a", "/b"):
            await create_endpoint(admin, "acme", url=target.url + path, event_types=["*"])
        batch = [
            {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {"i": i}}
            for i in range(1000)
        ]
        ok(await admin.post("/v1/events/batch", json={"events": batch}), 202)
        assert await db.fetchval("SELECT count(*) FROM deliveries") == 2000

        first = await _start_worker(settings)
        await target.wait_for(300, timeout=60)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        unfinished = await db.fetchval(
            "SELECT count(*) FROM deliveries WHERE status IN ('pending', 'in_flight')"
        )
        assert unfinished > 0, "the first worker finished before it was killed"

        second = await _start_worker(settings)
        try:

            async def all_done() -> bool:
                left = await db.fetchval(
                    "SELECT count(*) FROM deliveries WHERE status IN ('pending', 'in_flight')"
                )
                return bool(left == 0)

            await eventually(all_done, timeout=120)
        finally:
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), timeout=30) == 0

        reached = {(r.path, r.headers["webhook-id"]) for r in target.requests}
    expected = await db.fetch(
        "SELECT ep.url, d.event_id FROM deliveries d JOIN endpoints ep ON ep.id = d.endpoint_id"
    )
    assert len(reached) == 2000 == len(expected)
    assert await db.fetchval("SELECT count(*) FROM deliveries WHERE status = 'succeeded'") == 2000
    # in-flight deliveries of the killed worker may have been sent twice: never fewer than once
    assert len(target.requests) >= 2000


async def test_a_killed_workers_deliveries_go_back_when_its_heartbeat_stops(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """With a lease of ten minutes, what a killed worker held (its requests under way and its
    prefetch) is sent by another within seconds: the heartbeat, not the lease, tells."""
    async with receiver(lambda n, r: Reply(delay_s=0.2)) as target:
        await create_tenant(admin, uid="acme")
        await create_event_type(admin, "invoice.paid")
        await create_endpoint(admin, "acme", url=target.url + "/a", event_types=["*"])
        batch = [
            {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {"i": i}}
            for i in range(200)
        ]
        ok(await admin.post("/v1/events/batch", json={"events": batch}), 202)
        slow = {"lease_s": "600", "worker_dead_after_s": "2", "delivery_timeout_s": "5"}
        first = await _start_worker(settings, **slow)
        await target.wait_for(5, timeout=60)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        held = await db.fetchval("SELECT count(*) FROM deliveries WHERE status = 'in_flight'")
        assert held > 0, "the killed worker held nothing"

        second = await _start_worker(settings, **slow)
        try:

            async def all_done() -> bool:
                left = await db.fetchval(
                    "SELECT count(*) FROM deliveries WHERE status <> 'succeeded'"
                )
                return bool(left == 0)

            await eventually(all_done, timeout=60)  # the lease alone would take 600 s
        finally:
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), timeout=30) == 0
    reached = {r.headers["webhook-id"] for r in target.requests}
    assert len(reached) == 200
    assert await db.fetchval("SELECT count(*) FROM workers") == 0  # the second signed off
