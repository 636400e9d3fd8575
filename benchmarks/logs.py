"""The delivery log at scale: seeds N attempt rows (N/2 deliveries, N/4 events, 10 tenants,
100 endpoints, spread over the last 7 days) and prints the latency of the main log queries
through the API. ``python -m benchmarks logs --attempts 10000000``."""

import asyncio
import statistics
import time
from collections.abc import Callable

import asyncpg
from cryptography.fernet import Fernet
from httpx import ASGITransport, AsyncClient

from hookpost import ids
from hookpost.app import create_app
from hookpost.db.engine import plain_dsn
from hookpost.settings import Settings

ADMIN_KEY = "hp_bench_admin"
REPEAT = 30

SEED = """
SET session_replication_role = replica;  -- no FK triggers while seeding: the data is consistent
CREATE OR REPLACE FUNCTION pg_temp.uuid7_at(at timestamptz) RETURNS uuid LANGUAGE sql AS $$
  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
    substring(int8send(floor(extract(epoch FROM at) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
    52, 1), 53, 1), 'hex')::uuid
$$;
INSERT INTO tenants (id, name, uid)
  SELECT hookpost_uuid7(), 'tenant ' || t, 'tenant-' || t FROM generate_series(1, 10) t;
INSERT INTO endpoints (id, tenant_id, url)
  SELECT hookpost_uuid7(), (SELECT id FROM tenants ORDER BY id OFFSET (e % 10) LIMIT 1),
         'https://receiver.test/' || e
  FROM generate_series(1, 100) e;
CREATE TEMP TABLE ep AS
  SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, tenant_id FROM endpoints;
CREATE TEMP TABLE ev AS
  SELECT g AS n, pg_temp.uuid7_at(now() - interval '7 days' * (1 - g::float8 / $1)) AS id
  FROM generate_series(1, $1) g;
INSERT INTO events (id, tenant_id, event_type, body, payload_hash, created_at)
  SELECT ev.id, ep.tenant_id, 'invoice.paid', '{"data": {}}', '\\x00',
         now() - interval '7 days' * (1 - ev.n::float8 / $1)
  FROM ev JOIN ep ON ep.n = ev.n % 100;
CREATE TEMP TABLE dl AS
  SELECT ev.n * 2 + k AS n, ev.id AS event_id, ep.id AS endpoint_id, ep.tenant_id,
         pg_temp.uuid7_at(now() - interval '7 days' * (1 - ev.n::float8 / $1)) AS id
  FROM ev, generate_series(0, 1) k,
       LATERAL (SELECT * FROM ep WHERE ep.n = (ev.n + k * 37) % 100) ep;
INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status, attempt_count,
                        created_at)
  SELECT id, event_id, endpoint_id, tenant_id, 'invoice.paid',
         CASE WHEN n % 50 = 0 THEN 'failed' WHEN n % 97 = 0 THEN 'pending'
              WHEN n % 5003 = 0 THEN 'in_flight' ELSE 'succeeded' END,
         2, now()
  FROM dl;
INSERT INTO attempts (id, delivery_id, endpoint_id, tenant_id, attempt_number, started_at,
                      duration_ms, request_headers, response_status, error_kind, worker_id)
  SELECT pg_temp.uuid7_at(now() - interval '7 days' * (1 - dl.n::float8 / ($1 * 2))),
         dl.id, dl.endpoint_id, dl.tenant_id, k, now(), 12, '{"webhook-id": "evt_x"}',
         CASE WHEN k = 1 THEN 500 ELSE 200 END,
         CASE WHEN k = 1 THEN 'http_status' END, 'bench'
  FROM dl, generate_series(1, 2) k;
INSERT INTO attempt_minutes (minute, worker_id, succeeded, failed)
  SELECT date_trunc('minute', now()) - interval '1 minute' * m, 'bench-' || w,
         $1 / 10080, $1 / 10080  -- two workers' counts, as many attempts a minute as above
  FROM generate_series(0, 1439) m, generate_series(1, 2) w;
SET session_replication_role = DEFAULT;
ANALYZE;
"""


async def seed(database_url: str, attempts: int, *, analyze: bool = True) -> float:
    connection = await asyncpg.connect(plain_dsn(database_url))
    started = time.perf_counter()
    try:
        today = await connection.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
        await connection.execute(
            "SELECT hookpost_create_attempt_partitions($1::date - 8, $1::date + 1)", today
        )
        events = attempts // 4
        for statement in SEED.split(";\n"):
            if statement.strip() and (analyze or statement.strip() != "ANALYZE"):
                sql = statement.replace("$1", str(events))
                await connection.execute(sql)
    finally:
        await connection.close()
    return time.perf_counter() - started


async def measure(database_url: str) -> list[tuple[str, float, float]]:
    connection = await asyncpg.connect(plain_dsn(database_url))
    endpoint = ids.encode(
        ids.Prefix.ENDPOINT,
        await connection.fetchval("SELECT id FROM endpoints ORDER BY id OFFSET 42 LIMIT 1"),
    )
    tenant = await connection.fetchval("SELECT uid FROM tenants ORDER BY id OFFSET 3 LIMIT 1")
    delivery = await connection.fetchval(
        "SELECT id FROM deliveries WHERE status = 'failed' ORDER BY id DESC OFFSET 10 LIMIT 1"
    )
    event = await connection.fetchval("SELECT event_id FROM deliveries WHERE id = $1", delivery)
    await connection.close()
    delivery_id = ids.encode(ids.Prefix.DELIVERY, delivery)
    event_id = ids.encode(ids.Prefix.EVENT, event)
    day_ago = time.time() - 86400

    def iso(seconds: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))

    queries: list[tuple[str, str, dict[str, str] | Callable[[], dict[str, str]]]] = [
        ("deliveries of an endpoint", "/v1/deliveries", {"endpoint_id": endpoint}),
        (
            "failed deliveries of a tenant",
            "/v1/deliveries",
            {"tenant_id": tenant, "status": "failed"},
        ),
        ("failed deliveries, all tenants", "/v1/deliveries", {"status": "failed"}),
        (
            "succeeded deliveries of a tenant",
            "/v1/deliveries",
            {"tenant_id": tenant, "status": "succeeded"},
        ),
        (
            "pending deliveries of an endpoint",
            "/v1/deliveries",
            {"endpoint_id": endpoint, "status": "pending"},
        ),
        (
            "deliveries in flight of a tenant",
            "/v1/deliveries",
            {"tenant_id": tenant, "status": "in_flight"},
        ),
        ("deliveries in flight, all tenants", "/v1/deliveries", {"status": "in_flight"}),
        ("an endpoint's figures (backlog included)", f"/v1/endpoints/{endpoint}/stats", {}),
        ("deliveries of an event", "/v1/deliveries", {"event_id": event_id}),
        (
            "deliveries of an endpoint, one hour a day ago",
            "/v1/deliveries",
            {"endpoint_id": endpoint, "since": iso(day_ago), "until": iso(day_ago + 3600)},
        ),
        ("one delivery with its attempts", f"/v1/deliveries/{delivery_id}", {}),
        ("attempts of an endpoint", "/v1/attempts", {"endpoint_id": endpoint}),
        (
            "attempts of an endpoint answering 500",
            "/v1/attempts",
            {"endpoint_id": endpoint, "status_code": "500"},
        ),
        ("attempts of a tenant", "/v1/attempts", {"tenant_id": tenant}),
        (
            "attempts of an endpoint, one hour a day ago",
            "/v1/attempts",
            {"endpoint_id": endpoint, "since": iso(day_ago), "until": iso(day_ago + 3600)},
        ),
    ]
    settings = Settings(
        database_url=database_url,
        admin_api_key=ADMIN_KEY,
        secret_key=Fernet.generate_key().decode(),
    )
    app = create_app(settings)
    results = []
    async with (
        app.router.lifespan_context(app),
        AsyncClient(
            transport=ASGITransport(app=app),
            base_url="http://bench",
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
        ) as client,
    ):
        for name, path, params in queries:
            timings = []
            for _ in range(REPEAT):
                started = time.perf_counter()
                response = await client.get(path, params=params)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.text
            timings.sort()
            results.append(
                (name, statistics.median(timings), timings[int(len(timings) * 0.95) - 1])
            )
    return results


def run(database_url: str, attempts: int) -> None:
    seconds = asyncio.run(seed(database_url, attempts))
    print(
        f"seeded {attempts:,} attempts, {attempts // 2:,} deliveries, "
        f"{attempts // 4:,} events in {seconds:.0f} s"
    )
    print()
    print(f"| query (through the API, {REPEAT} runs) | p50 ms | p95 ms |")
    print("|---|---:|---:|")
    for name, p50, p95 in asyncio.run(measure(database_url)):
        print(f"| {name} | {p50:.1f} | {p95:.1f} |")
