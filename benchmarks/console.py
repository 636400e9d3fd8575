"""The console and the portal at scale: seeds the log benchmark's data (``logs.seed``; a
million deliveries by default) and prints each page's time through the app, signed in as an
operator and as a tenant's customer. ``python -m benchmarks console --attempts 2000000``."""

import asyncio
import re
import statistics
import time

import asyncpg
from cryptography.fernet import Fernet
from httpx import ASGITransport, AsyncClient

from benchmarks import logs
from hookpost import ids
from hookpost.app import create_app
from hookpost.db.engine import plain_dsn
from hookpost.settings import Settings

REPEAT = 30
TARGET_MS = 50


async def _targets(database_url: str) -> dict[str, str]:
    connection = await asyncpg.connect(plain_dsn(database_url))
    try:
        endpoint = await connection.fetchval(
            "SELECT id FROM endpoints ORDER BY id OFFSET 42 LIMIT 1"
        )
        tenant = await connection.fetchval("SELECT id FROM tenants ORDER BY id OFFSET 3 LIMIT 1")
        delivery = await connection.fetchval(
            "SELECT id FROM deliveries WHERE status = 'failed' ORDER BY id DESC OFFSET 10 LIMIT 1"
        )
        await connection.execute(
            "UPDATE endpoints SET consecutive_failures = 3 WHERE id = $1", endpoint
        )
    finally:
        await connection.close()
    return {
        "endpoint": ids.encode(ids.Prefix.ENDPOINT, endpoint),
        "tenant": ids.encode(ids.Prefix.TENANT, tenant),
        "delivery": ids.encode(ids.Prefix.DELIVERY, delivery),
    }


async def _timed(client: AsyncClient, path: str) -> tuple[float, float]:
    timings = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        answer = await client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.95) - 1]


async def measure(database_url: str) -> list[tuple[str, float, float]]:
    found = await _targets(database_url)
    endpoint, tenant, delivery = found["endpoint"], found["tenant"], found["delivery"]
    pages = [
        ("overview", "/"),
        ("overview's figures, refreshed", "/overview/figures"),
        ("endpoints", "/endpoints"),
        ("an endpoint with its figures and last attempts", f"/endpoints/{endpoint}"),
        ("an endpoint, charted over the day", f"/endpoints/{endpoint}?span=day"),
        ("deliveries", "/deliveries"),
        ("failed deliveries", "/deliveries?status=failed"),
        ("deliveries of an endpoint", f"/deliveries?endpoint={endpoint}"),
        (
            "deliveries of a tenant, of a type, failed",
            f"/deliveries?tenant={tenant}&type=invoice.paid&status=failed",
        ),
        ("a delivery with its attempts", f"/deliveries/{delivery}"),
        ("tenants", "/tenants"),
        ("a tenant's change form", f"/tenants/{tenant}/edit"),
        ("an endpoint's change form", f"/endpoints/{endpoint}/edit"),
        ("search: a piece of a URL", "/search?q=example"),
        ("search: an idempotency key", "/search?q=no-such-key"),
    ]
    portal_pages = [
        ("portal: the tenant's endpoints", "/portal"),
        ("portal: the tenant's deliveries", "/portal/deliveries"),
    ]
    settings = Settings(
        database_url=database_url,
        admin_api_key=logs.ADMIN_KEY,
        secret_key=Fernet.generate_key().decode(),
    )
    app = create_app(settings)
    results = []
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://bench") as operator,
        AsyncClient(transport=ASGITransport(app=app), base_url="http://bench") as customer,
    ):
        signed_in = await operator.post("/sign-in", data={"key": logs.ADMIN_KEY})
        assert signed_in.status_code == 303
        for name, path in pages:
            results.append((name, *await _timed(operator, path)))
        made = await operator.post(
            f"/v1/tenants/{tenant}/portal-links",
            json={"scope": "manage"},
            headers={"authorization": f"Bearer {logs.ADMIN_KEY}"},
        )
        link = re.sub(r"^http://bench", "", made.json()["url"])
        assert (await customer.get(link)).status_code == 303
        for name, path in portal_pages:
            results.append((name, *await _timed(customer, path)))
    return results


def run(database_url: str, attempts: int) -> None:
    """Each page without statistics (a young database on a server whose autovacuum has not
    run yet), then after ``ANALYZE``."""
    seconds = asyncio.run(logs.seed(database_url, attempts, analyze=False))
    print(
        f"seeded {attempts:,} attempts, {attempts // 2:,} deliveries, "
        f"{attempts // 4:,} events in {seconds:.0f} s"
    )
    fresh = asyncio.run(measure(database_url))
    asyncio.run(_analyze(database_url))
    analyzed = asyncio.run(measure(database_url))
    print()
    print(
        f"| page (through the app, {REPEAT} runs) | p50 ms, no statistics | p95 ms | "
        f"p50 ms, analyzed | p95 ms |"
    )
    print("|---|---:|---:|---:|---:|")
    for (name, p50, p95), (_, a50, a95) in zip(fresh, analyzed, strict=True):
        print(f"| {name} | {p50:.1f} | {p95:.1f} | {a50:.1f} | {a95:.1f} |")
    slowest = max(p95 for _, _, p95 in fresh + analyzed)
    print(f"\nslowest p95: {slowest:.1f} ms (target: under {TARGET_MS} ms)")


async def _analyze(database_url: str) -> None:
    connection = await asyncpg.connect(plain_dsn(database_url))
    try:
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
