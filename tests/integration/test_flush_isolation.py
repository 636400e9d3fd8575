"""A value the database refuses fails its own row, never the batch: a sender that hands the
worker an answer Postgres cannot store (as a receiver could before the sender made answers
storable) beside a healthy tenant's deliveries in the same flushes."""

import asyncpg
import orjson
from httpx import AsyncClient

from hookpost.delivery.attempt import USER_AGENT
from hookpost.delivery.sender import AiohttpSender, SenderLimits, SendResult
from hookpost.delivery.ssrf import DestinationPolicy
from hookpost.settings import Settings
from tests.integration.delivery_helpers import eventually, running_worker
from tests.integration.helpers import create_endpoint, create_event_type, create_tenant, ok
from tests.receiver import receiver

LIMITS = SenderLimits(
    connections=16, total_timeout_s=2, connect_timeout_s=1, read_timeout_s=1, body_cap_bytes=1024
)


class Poisoning:
    """The real sender, whose answers from ``/poison`` carry NUL and a lone surrogate."""

    def __init__(self, inner: AiohttpSender) -> None:
        self._inner = inner

    async def send(
        self, url: str, headers: dict[str, str], body: bytes, *, timeout_s: float | None = None
    ) -> SendResult:
        result = await self._inner.send(url, headers, body, timeout_s=timeout_s)
        if "/poison" in url:
            result.body = "bad\x00body"
            result.headers = {"x-bad": "\udc80"}
        return result

    async def close(self) -> None:
        await self._inner.close()


async def test_a_refused_row_costs_its_neighbours_nothing(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    await create_event_type(admin, "invoice.paid")
    await create_tenant(admin, uid="healthy")
    await create_tenant(admin, uid="poisoned")
    async with receiver() as target:
        await create_endpoint(admin, "healthy", url=f"{target.url}/ok", event_types=["*"])
        await create_endpoint(admin, "poisoned", url=f"{target.url}/poison", event_types=["*"])
        for n in range(40):
            tenant = "poisoned" if n % 8 == 0 else "healthy"
            body = {"tenant_id": tenant, "event_type": "invoice.paid", "payload": {"n": n}}
            ok(await admin.post("/v1/events", json=body), 202)
        sender = Poisoning(
            AiohttpSender(
                LIMITS, user_agent=USER_AGENT, policy=DestinationPolicy.from_settings(settings)
            )
        )

        async def all_succeeded() -> bool:
            return bool(
                await db.fetchval("SELECT count(*) FROM deliveries WHERE status = 'succeeded'")
                == 40
            )

        async with running_worker(settings, sender=sender, worker_flush_s=0.2):
            await eventually(all_succeeded, timeout=15)
        await sender.close()
    healthy = [r for r in target.requests if r.path == "/ok"]
    assert len(healthy) == 35
    assert len({orjson.loads(r.body)["data"]["n"] for r in healthy}) == 35  # each once
    assert await db.fetchval("SELECT max(attempt_count) FROM deliveries") == 1
    rows = await db.fetch(
        "SELECT a.response_body, a.response_headers, a.error_message FROM attempts a "
        "JOIN endpoints e ON e.id = a.endpoint_id WHERE e.url LIKE '%/poison'"
    )
    assert len(rows) == 5
    for row in rows:
        assert row["response_body"] is None
        assert row["response_headers"] is None
        assert "the response was not kept" in row["error_message"]
    kept = await db.fetchval(
        "SELECT count(*) FROM attempts WHERE response_body = 'ok' AND error_message IS NULL"
    )
    assert kept == 35
