"""Traffic through the API: ingest rates (single events and batches) and the steady-state
latency from the API accepting an event to the receiver getting it. The clients are aiohttp,
so that the client's own cost (httpx's pool is several times slower) stays out of the figures."""

import asyncio
import time

import aiohttp
import orjson

CLIENTS = 32


def _session(api: str, admin_key: str, connections: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        base_url=api,
        headers={"authorization": f"Bearer {admin_key}", "content-type": "application/json"},
        connector=aiohttp.TCPConnector(limit=connections),
    )


async def _post(session: aiohttp.ClientSession, path: str, body: bytes) -> None:
    async with session.post(path, data=body) as response:
        await response.read()
        assert response.status == 202, await response.text()


async def ingest_single(api: str, admin_key: str, count: int) -> float:
    """Events per second through ``POST /v1/events``, ``CLIENTS`` at a time."""
    body = orjson.dumps(
        {"tenant_id": "bench", "event_type": "invoice.paid", "payload": {"amount": 4200}}
    )
    left = count
    async with _session(api, admin_key, CLIENTS) as session:

        async def loop() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await _post(session, "/v1/events", body)

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(CLIENTS)))
        return count / (time.perf_counter() - started)


async def ingest_batches(api: str, admin_key: str, batches: int, size: int = 1000) -> float:
    """Events per second through ``POST /v1/events/batch``, batches of ``size``, 4 at a time."""
    body = orjson.dumps(
        {
            "events": [
                {"tenant_id": "bench", "event_type": "invoice.paid", "payload": {"i": i}}
                for i in range(size)
            ]
        }
    )
    left = batches
    async with _session(api, admin_key, 4) as session:

        async def loop() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await _post(session, "/v1/events/batch", body)

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(4)))
        return batches * size / (time.perf_counter() - started)


async def _emit_at(session: aiohttp.ClientSession, rate: int, seconds: float) -> int:
    """Emit ``rate`` events a second for ``seconds``; how many were sent."""
    started = time.perf_counter()
    sent = 0
    pending: set[asyncio.Task[None]] = set()
    while (elapsed := time.perf_counter() - started) < seconds:
        due = int(elapsed * rate) + 1
        while sent < due:
            body = orjson.dumps(
                {"tenant_id": "bench", "event_type": "invoice.paid", "payload": {"n": sent}}
            )
            task = asyncio.create_task(_post(session, "/v1/events", body))
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += 1
        await asyncio.sleep(0.002)
    await asyncio.gather(*pending)
    return sent


async def steady(
    api: str, receiver: str, admin_key: str, *, rate: int, seconds: float
) -> tuple[float, float]:
    """(p50, p99) milliseconds from accept to receive while emitting ``rate`` events a second
    for ``seconds``, with a worker process (started by the caller) delivering."""
    async with _session(api, admin_key, 32) as session:
        # one second of warm-up (connections, prepared statements), then measure
        await _emit_at(session, rate, 1.0)
        await asyncio.sleep(0.5)
        async with session.get(f"{receiver}/stats") as forget:
            await forget.read()
        sent = await _emit_at(session, rate, seconds)
        latencies: list[float] = []
        deadline = time.perf_counter() + 30
        while len(latencies) < sent and time.perf_counter() < deadline:
            await asyncio.sleep(0.2)
            async with session.get(f"{receiver}/stats") as answer:
                latencies += (await answer.json()).get("steady", [])
    latencies.sort()
    assert len(latencies) >= sent * 0.99, f"{len(latencies)} of {sent} arrived"
    return latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99) - 1] * 1000
