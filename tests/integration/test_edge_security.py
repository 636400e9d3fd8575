"""The edges a hostile or unlucky request meets before any tenant's data: console sessions
end with the key they were signed in with, ``/metrics`` behind its own key when one is set,
readiness through a database restart, and sign-in refused from another origin."""

import asyncio

import asyncpg
from httpx import AsyncClient

TERMINATE_OTHERS = (
    "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)
TERMINATED_GONE = "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = ANY($1))"


async def _terminate_other_backends(db: asyncpg.Connection) -> None:
    """As a database restart does: every other connection's server side goes away."""
    terminated = [row["pid"] for row in await db.fetch(TERMINATE_OTHERS)]
    assert terminated, "the app holds no connection to break"
    for _ in range(100):  # pg_terminate_backend only signals; wait for the backends to exit
        if await db.fetchval(TERMINATED_GONE, terminated):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the backends did not exit")


async def test_the_first_readiness_probe_after_a_database_restart_is_ready(
    anonymous: AsyncClient, db: asyncpg.Connection
) -> None:
    assert (await anonymous.get("/readyz")).status_code == 200  # a connection is now pooled
    await _terminate_other_backends(db)
    first = await anonymous.get("/readyz")
    assert (first.status_code, first.json()) == (200, {"status": "ok", "detail": None})
