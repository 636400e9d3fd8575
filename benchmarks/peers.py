"""hookpost beside what a user would pick instead, on one protocol: ``python -m benchmarks peers``.

Every system gets one warm worker process with its defaults and the same fast receiver; the
clock starts when the first event is handed to the system and stops when the receiver has
the last of ``count``; events arrive while the worker runs. Each signs its requests as
hookpost does (Standard Webhooks, one HMAC-SHA256 a request) and sends hookpost's body.

- hookpost: ``hookpost api`` and one ``hookpost worker``, events through
  ``POST /v1/events/batch`` (1000 a request): fanned out over 100 tenants with an endpoint each
  (interleaved); all to one endpoint (its default ``max_in_flight``); over 300 tenants, all
  healthy, and the same with 60 of their endpoints hanging (never answering: the default
  delivery timeout ends them), counting the healthy deliveries; and the accept-to-receive
  latency of single events at 200 a second (``traffic.steady``);
- pgqueuer + aiohttp: a PgQueuer consumer (its defaults) whose entrypoint POSTs with one
  aiohttp session, jobs enqueued 1000 a call;
- Celery + Redis: a worker of 32 threads (``--pool threads -c 32``) whose task POSTs with one
  httpx client, tasks sent with ``delay()``; Redis on 127.0.0.1:6379, started when absent;
- the ceiling: a bare aiohttp loop on uvloop, no queue (``delivery.ceiling``).
"""

import asyncio
import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import httpx
import orjson

from benchmarks import delivery, processes, traffic
from hookpost.db.engine import plain_dsn
from hookpost.delivery.signing import generate_secret, secret_bytes, sign

KEY = secret_bytes(generate_secret())
REDIS_URL = "redis://127.0.0.1:6379/15"
CELERY_THREADS = 32
BATCH = 1000
FANOUT_TENANTS = 100
ISOLATION_TENANTS, HANGING = 300, 60
STEADY_RATE = 200
PGQUEUER = "pgqueuer + aiohttp, one worker process"
CELERY_ROW = f"Celery + Redis, {CELERY_THREADS} threads"


def body(kind: str, n: int) -> bytes:
    """The webhook body of event ``n``: its ``timestamp`` is when it was made (the receiver
    measures from it)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return orjson.dumps(
        {"id": f"evt_{kind}_{n}", "type": "invoice.paid", "timestamp": now, "data": {"n": n}}
    )


def signed_headers(payload: bytes, msg_id: str) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign([KEY], msg_id, timestamp, payload),
    }


# the receiver's side


async def received(receiver: str, kind: str, count: int, timeout_s: float = 300) -> float:
    """When (perf_counter) the receiver had ``count`` requests under ``/kind/``."""
    got = 0
    deadline = time.perf_counter() + timeout_s
    async with aiohttp.ClientSession() as session:
        while got < count:
            assert time.perf_counter() < deadline, f"{kind}: {got} of {count} arrived"
            await asyncio.sleep(0.02)
            async with session.get(f"{receiver}/stats") as answer:
                got += len((await answer.json()).get(kind, []))
    return time.perf_counter()


async def timed(
    receiver: str, kind: str, count: int, send: Callable[[], Coroutine[Any, Any, None]]
) -> float:
    """Deliveries per second: ``send`` hands ``count`` events over while the receiver is
    watched; from the first handed over to the last received."""
    started = time.perf_counter()
    sending = asyncio.create_task(send())
    finished = await received(receiver, kind, count)
    await sending
    return count / (finished - started)


# pgqueuer + aiohttp


def _pgqueuer_worker(database_url: str, receiver: str) -> None:
    """The consumer process: PgQueuer with its defaults, one aiohttp session."""
    import uvloop
    from pgqueuer import AsyncpgDriver, Job, PgQueuer

    async def main() -> None:
        connection = await asyncpg.connect(plain_dsn(database_url))
        pgq = PgQueuer(AsyncpgDriver(connection))
        session = aiohttp.ClientSession()

        @pgq.entrypoint("webhook")
        async def deliver(job: Job) -> None:
            assert job.payload is not None
            msg_id = f"evt_{job.id}"
            async with session.post(
                f"{receiver}/pgqueuer/",
                data=job.payload,
                headers=signed_headers(job.payload, msg_id),
            ) as answer:
                await answer.read()

        await pgq.run()

    uvloop.run(main())


async def _pgqueuer_install(database_url: str) -> None:
    from pgqueuer import AsyncpgDriver, Queries

    connection = await asyncpg.connect(plain_dsn(database_url))
    try:
        await Queries(AsyncpgDriver(connection)).install()
    finally:
        await connection.close()


async def _pgqueuer_send(database_url: str, kind: str, start: int, count: int) -> None:
    from pgqueuer import AsyncpgDriver, Queries

    connection = await asyncpg.connect(plain_dsn(database_url))
    try:
        queries = Queries(AsyncpgDriver(connection))
        for first in range(start, start + count, BATCH):
            size = min(BATCH, start + count - first)
            await queries.enqueue(
                ["webhook"] * size, [body(kind, first + i) for i in range(size)], [0] * size
            )
    finally:
        await connection.close()


def pgqueuer_rate(database_url: str, receiver: str, count: int) -> float:
    asyncio.run(_pgqueuer_install(database_url))
    with process([sys.executable, "-m", "benchmarks.peers", "pgqueuer", database_url, receiver]):

        async def run() -> float:
            await _pgqueuer_send(database_url, "pgqueuer", 0, 10)  # warm-up
            await received(receiver, "pgqueuer", 10, timeout_s=60)
            return await timed(
                receiver,
                "pgqueuer",
                count,
                lambda: _pgqueuer_send(database_url, "pgqueuer", 10, count),
            )

        return asyncio.run(run())


# Celery + Redis


def celery_app() -> Any:
    """The Celery app of the benchmark's worker and producer."""
    from celery import Celery

    app = Celery("hookpost_peer", broker=REDIS_URL)
    app.conf.update(worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)
    client = httpx.Client()

    @app.task(name="deliver", ignore_result=True)
    def deliver(payload: str, receiver: str) -> None:
        data = payload.encode()
        headers = signed_headers(data, f"evt_{hash(payload)}")
        client.post(f"{receiver}/celery/", content=data, headers=headers).raise_for_status()

    return app


@contextlib.contextmanager
def _redis() -> Iterator[None]:
    """Redis on 127.0.0.1:6379: the one running, or one started for the run."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).ping()
        yield
        return
    except redis.ConnectionError:
        pass
    server = shutil.which("redis-server")
    assert server, "no Redis answers on 127.0.0.1:6379 and redis-server is not installed"
    args = [server, "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no"]
    with process(args):
        for _ in range(100):
            with contextlib.suppress(redis.ConnectionError):
                redis.Redis.from_url(REDIS_URL).ping()
                break
            time.sleep(0.05)
        yield


def celery_rate(receiver: str, count: int) -> float:
    with _redis():
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        app = celery_app()
        task = app.tasks["deliver"]
        worker = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "benchmarks.peers:CELERY",
            "worker",
            "--pool",
            "threads",
            "-c",
            str(CELERY_THREADS),
            "--loglevel",
            "warning",
        ]
        with process(worker):

            async def send(start: int, size: int) -> None:
                for n in range(start, start + size):
                    task.delay(body("celery", n).decode(), receiver)
                    if n % 100 == 0:
                        await asyncio.sleep(0)  # let the receiver be watched

            async def run() -> float:
                await send(0, 10)  # warm-up
                await received(receiver, "celery", 10, timeout_s=60)
                return await timed(receiver, "celery", count, lambda: send(10, count))

            return asyncio.run(run())


# hookpost


async def _hookpost_setup(
    api: str, admin_key: str, receiver: str, kind: str, tenants: int, hanging: int = 0
) -> None:
    """``tenants`` tenants ``{kind}{n}`` with an endpoint each on ``/{kind}/``, the last
    ``hanging`` of them on ``/hang/``."""
    headers = {"authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(base_url=api, headers=headers) as client:
        made = await client.post("/v1/event-types", json={"name": "invoice.paid"})
        assert made.status_code in (201, 409), made.text
        for number in range(tenants):
            tenant = await client.post(
                "/v1/tenants", json={"name": f"t{number}", "uid": f"{kind}{number}"}
            )
            assert tenant.status_code == 201, tenant.text
            endpoint = await client.post(
                "/v1/endpoints",
                json={
                    "tenant_id": f"{kind}{number}",
                    "url": f"{receiver}/{'hang' if number >= tenants - hanging else kind}/",
                    "event_types": ["invoice.paid"],
                },
            )
            assert endpoint.status_code == 201, endpoint.text


async def _hookpost_send(
    api: str, admin_key: str, kind: str, tenants: int, start: int, count: int
) -> None:
    headers = {"authorization": f"Bearer {admin_key}", "content-type": "application/json"}
    async with aiohttp.ClientSession(base_url=api, headers=headers) as session:
        for first in range(start, start + count, BATCH):
            size = min(BATCH, start + count - first)
            events = [
                {
                    "tenant_id": f"{kind}{(first + i) % tenants}",
                    "event_type": "invoice.paid",
                    "payload": {"n": first + i},
                }
                for i in range(size)
            ]
            async with session.post(
                "/v1/events/batch", data=orjson.dumps({"events": events})
            ) as answer:
                assert answer.status == 202, await answer.text()


def hookpost_rate(
    database_url: str,
    receiver: str,
    count: int,
    *,
    kind: str,
    tenants: int,
    admin_key: str,
    secret_key: str,
    hanging: int = 0,
) -> float:
    """Deliveries per second to the healthy endpoints, ``count`` events interleaved over
    ``tenants`` tenants of which the last ``hanging`` hang."""
    healthy = sum(1 for n in range(10, 10 + count) if n % tenants < tenants - hanging)
    with processes.api(database_url, admin_key=admin_key, secret_key=secret_key) as api:
        asyncio.run(_hookpost_setup(api, admin_key, receiver, kind, tenants, hanging))
        worker = [sys.executable, "-m", "hookpost", "worker"]
        with process(
            worker,
            env=processes.hookpost_env(database_url, admin_key=admin_key, secret_key=secret_key),
        ):

            async def run() -> float:
                await _hookpost_send(api, admin_key, kind, tenants, 0, 10)  # warm-up
                await received(receiver, kind, 10, timeout_s=60)
                return await timed(
                    receiver,
                    kind,
                    healthy,
                    lambda: _hookpost_send(api, admin_key, kind, tenants, 10, count),
                )

            return asyncio.run(run())


def hookpost_latency(
    database_url: str, receiver: str, seconds: float, *, admin_key: str, secret_key: str
) -> tuple[float, float]:
    """(p50, p99) milliseconds from the API accepting an event to the receiver getting it,
    single events at ``STEADY_RATE`` a second to one endpoint for ``seconds``."""
    with processes.api(database_url, admin_key=admin_key, secret_key=secret_key) as api:
        with httpx.Client(base_url=api, headers={"authorization": f"Bearer {admin_key}"}) as client:
            for path, body in (
                ("/v1/event-types", {"name": "invoice.paid"}),
                ("/v1/tenants", {"name": "bench", "uid": "bench"}),  # traffic.steady's tenant
                (
                    "/v1/endpoints",
                    {
                        "tenant_id": "bench",
                        "url": f"{receiver}/steady/",
                        "event_types": ["invoice.paid"],
                    },
                ),
            ):
                made = client.post(path, json=body)
                assert made.status_code == 201, made.text
        worker = [sys.executable, "-m", "hookpost", "worker"]
        with process(
            worker,
            env=processes.hookpost_env(database_url, admin_key=admin_key, secret_key=secret_key),
        ):
            return asyncio.run(
                traffic.steady(api, receiver, admin_key, rate=STEADY_RATE, seconds=seconds)
            )


# processes


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str] | None = None) -> Iterator[None]:
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL)
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run(
    database: Callable[[], contextlib.AbstractContextManager[str]],
    *,
    admin_key: str,
    secret_key: str,
    count: int,
    steady_s: float,
) -> tuple[list[tuple[str, float]], tuple[float, float]]:
    """The rows: (system, deliveries/s), each on a fresh database where it needs one; and
    hookpost's (p50, p99) accept-to-receive milliseconds at ``STEADY_RATE`` events a second
    for ``steady_s``."""
    rows = []
    isolation = f"hookpost, {ISOLATION_TENANTS} tenants"
    with processes.receiver() as receiver:
        for name, kind, tenants, hanging in (
            (
                f"hookpost, {FANOUT_TENANTS} tenants with an endpoint each",
                "fanout",
                FANOUT_TENANTS,
                0,
            ),
            ("hookpost, every event to one endpoint (default max_in_flight)", "busy", 1, 0),
            (f"{isolation}, all healthy", "healthy", ISOLATION_TENANTS, 0),
            (
                f"{isolation}, {HANGING} of them hanging (healthy deliveries/s)",
                "mixed",
                ISOLATION_TENANTS,
                HANGING,
            ),
        ):
            with database() as url:
                rate = hookpost_rate(
                    url,
                    receiver,
                    count,
                    kind=kind,
                    tenants=tenants,
                    admin_key=admin_key,
                    secret_key=secret_key,
                    hanging=hanging,
                )
            rows.append((name, rate))
        with database() as url:
            latency = hookpost_latency(
                url, receiver, steady_s, admin_key=admin_key, secret_key=secret_key
            )
        with database() as url:
            rows.append((PGQUEUER, pgqueuer_rate(url, receiver, count)))
        rows.append((CELERY_ROW, celery_rate(receiver, count)))
        rows.append(
            (
                "bare aiohttp loop on uvloop, no queue (ceiling)",
                asyncio.run(delivery.ceiling(f"{receiver}/hook", count)),
            )
        )
    return rows, latency


CELERY = celery_app() if "celery" in sys.argv[0] else None

if __name__ == "__main__" and sys.argv[1] == "pgqueuer":
    _pgqueuer_worker(sys.argv[2], sys.argv[3])
