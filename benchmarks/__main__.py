"""Run hookpost's benchmarks and print a table: ``python -m benchmarks [--quick]``.

Scenarios:
- ceiling: a bare aiohttp loop doing the same signed POSTs to the same receiver, no database;
- drain: a worker delivering a pre-filled backlog to the receiver, every attempt logged;
- logs (``python -m benchmarks logs``, alone): the log queries' latency over 10 million
  attempts (see ``benchmarks/logs.py``);
- isolation (``python -m benchmarks isolation``, alone): healthy endpoints' throughput and
  latency when 20 of 100 endpoints hang (see ``benchmarks/isolation.py``).

It uses ``HOOKPOST_DATABASE_URL``'s server when set (in a fresh database it creates and drops),
else an embedded Postgres in a temporary folder. The receiver runs in its own process on
127.0.0.1. Every run is bounded in count and time.
"""

import argparse
import asyncio
import contextlib
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg
from cryptography.fernet import Fernet

from benchmarks import isolation, logs
from benchmarks.seed import add_endpoint
from hookpost.db.engine import create_engine, driver_connection, plain_dsn, session_factory
from hookpost.db.scratch import scratch_database
from hookpost.delivery.signing import generate_secret, secret_bytes, sign
from hookpost.delivery.worker import Worker
from hookpost.encryption import SecretBox
from hookpost.ids import new_id
from hookpost.ingest.emit import EventIn, emit
from hookpost.settings import Settings

CONCURRENCY = 32
BENCH_KEY = Fernet.generate_key().decode()  # encrypts the benchmark endpoint's secret
BODY = b'{"id":"evt_bench","type":"invoice.paid","timestamp":"2026-11-22T00:00:00Z","data":{}}'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _receiver() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.receiver", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def ceiling(url: str, count: int) -> float:
    """Signed POSTs per second of a bare aiohttp loop: the most the machine gives."""
    key = secret_bytes(generate_secret())
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def loop() -> None:
            while not queue.empty():
                queue.get_nowait()
                timestamp = int(time.time())
                headers = {
                    "content-type": "application/json",
                    "webhook-id": "evt_bench",
                    "webhook-timestamp": str(timestamp),
                    "webhook-signature": sign([key], "evt_bench", timestamp, BODY),
                }
                async with session.post(url, data=BODY, headers=headers) as response:
                    await response.read()
                    assert response.status == 200

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(CONCURRENCY)))
        return count / (time.perf_counter() - started)


async def _seed(database_url: str, url: str, count: int) -> None:
    """``count`` pending deliveries to one endpoint at ``url``."""
    engine = create_engine(database_url)
    box = SecretBox([BENCH_KEY])
    tenant_id = new_id()
    async with engine.begin() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        await raw.execute("INSERT INTO tenants (id, name) VALUES ($1, 'bench')", tenant_id)
        await raw.execute(
            "INSERT INTO event_types (id, name) VALUES ($1, 'invoice.paid')", new_id()
        )
        # one fast receiver takes the whole run: its endpoint's limit must not be the bottleneck
        await add_endpoint(raw, tenant_id, url, box, subscribes_to="*", max_in_flight=1000)
    sessions = session_factory(engine)
    for start in range(0, count, 1000):
        async with sessions() as session, session.begin():
            await emit(
                await driver_connection(session),
                [
                    EventIn(tenant_id, "invoice.paid", {"i": i}, None)
                    for i in range(start, min(start + 1000, count))
                ],
            )
    await engine.dispose()


async def drain(database_url: str, url: str, count: int) -> float:
    """Deliveries per second of one worker process emptying a backlog of ``count``."""
    await _seed(database_url, url, count)
    settings = Settings(
        database_url=database_url,
        secret_key=BENCH_KEY,
        worker_concurrency=CONCURRENCY,
        log_level="warning",
        allowed_networks="127.0.0.0/8",  # the benchmark receiver is local
    )
    connection = await asyncpg.connect(plain_dsn(database_url))
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(Worker(settings).run(stop))
    deadline = started + 600
    while time.perf_counter() < deadline:
        done = await connection.fetchval(
            "SELECT count(*) FROM deliveries WHERE status = 'succeeded'"
        )
        if done == count:
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    logged = await connection.fetchval("SELECT count(*) FROM attempts")
    await connection.close()
    assert logged == count, f"{logged} attempts logged for {count} deliveries"
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "scenario",
        nargs="?",
        choices=["delivery", "logs", "isolation"],
        default="delivery",
        help="what to run",
    )
    parser.add_argument("--quick", action="store_true", help="small counts: under a minute")
    parser.add_argument(
        "--attempts", type=int, default=10_000_000, help="attempt rows to seed for 'logs'"
    )
    parser.add_argument("--count", type=int, help="deliveries per scenario")
    args = parser.parse_args()
    count = args.count or (5_000 if args.quick else 20_000)
    try:
        import uvloop

        uvloop.install()
        loop_name = "uvloop"
    except ImportError:
        loop_name = "asyncio"

    server_url = os.environ.get("HOOKPOST_DATABASE_URL")
    if args.scenario == "logs":
        with (
            tempfile.TemporaryDirectory() as folder,
            scratch_database(server_url, Path(folder), label="bench") as database_url,
        ):
            logs.run(database_url, args.attempts)
        return
    if args.scenario == "isolation":
        with (
            tempfile.TemporaryDirectory() as folder,
            _receiver() as url,
            scratch_database(server_url, Path(folder), label="bench") as database_url,
        ):
            rows = asyncio.run(isolation.run(database_url, url.rsplit("/", 1)[0], BENCH_KEY))
        print(f"\n{isolation.RATE} events/s for {isolation.SECONDS} s, one endpoint each in turn")
        print("| run | healthy deliveries/s | p50 ms | p99 ms |")
        print("|---|---:|---:|---:|")
        for name, rate, p50, p99 in rows:
            print(f"| {name} | {rate:,.0f} | {p50:.0f} | {p99:.0f} |")
        print(f"\nhealthy throughput with hanging endpoints: {rows[1][1] / rows[0][1]:.0%}")
        return
    with (
        tempfile.TemporaryDirectory() as folder,
        _receiver() as url,
        scratch_database(server_url, Path(folder), label="bench") as database_url,
    ):
        bare = asyncio.run(ceiling(url, count))
        drained = asyncio.run(drain(database_url, url, count))

    print(
        f"\nhookpost benchmarks: {count} signed POSTs each, concurrency {CONCURRENCY}, {loop_name}"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print()
    print("| scenario | per second | vs ceiling |")
    print("|---|---:|---:|")
    print(f"| ceiling: bare aiohttp loop, no database | {bare:,.0f} | 100% |")
    print(f"| drain: worker, attempts logged | {drained:,.0f} | {drained / bare:.0%} |")


if __name__ == "__main__":
    main()
