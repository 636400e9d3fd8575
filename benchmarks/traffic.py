"""Traffic through the API: ingest rates (single events and batches) and the steady-state
latency from the API accepting an event to the receiver getting it.

The client shares the machine with the API and Postgres, and its CPU is not hookpost's: the
single-event rate is driven by a bare asyncio protocol on httptools' parser (about 30 us a
request here, against 170 us for aiohttp's client, whose CPU held the API back by a tenth);
batches and the steady rate, where the client's part is small, by aiohttp (httpx's pool is
several times slower still)."""

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp
import httptools
import orjson

CLIENTS = 32


class _Connection(asyncio.Protocol):
    """One keep-alive connection posting the same request, the next once the last is
    answered, while the shared count ``left`` wants more; every answer must be a 202."""

    def __init__(self, request: bytes, left: list[int], done: asyncio.Future[None]) -> None:
        self._request = request
        self._left = left
        self._done = done
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._send_next()

    def _send_next(self) -> None:
        assert self._transport is not None
        if self._left[0] <= 0:
            self._transport.close()
            return
        self._left[0] -= 1
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_message_complete(self) -> None:  # httptools' callback: an answer is in
        status = self._parser.get_status_code()
        if status != 202 and not self._done.done():
            self._done.set_exception(AssertionError(f"an event's POST answered {status}"))
        self._send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            if self._left[0] > 0:
                self._done.set_exception(exc or ConnectionError("the API closed a connection"))
            else:
                self._done.set_result(None)


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


async def ingest_single(
    api: str,
    admin_key: str,
    count: int,
    *,
    path: str = "/v1/events",
    event: dict[str, Any] | None = None,
    headers: bytes = b"",
) -> float:
    """Events per second through ``POST /v1/events`` (or ``path`` with ``event`` as its body,
    and ``headers`` more), on ``CLIENTS`` connections, each posting its next event once the
    last is answered."""
    address = urlsplit(api)
    assert address.hostname is not None
    assert address.port is not None
    body = orjson.dumps(
        event or {"tenant_id": "bench", "event_type": "invoice.paid", "payload": {"amount": 4200}}
    )
    request = (
        b"POST %s HTTP/1.1\r\nhost: %s\r\nauthorization: Bearer %s\r\n%s"
        b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
        % (path.encode(), address.netloc.encode(), admin_key.encode(), headers, len(body), body)
    )
    loop = asyncio.get_running_loop()
    left = [count]
    finished = [loop.create_future() for _ in range(CLIENTS)]
    started = time.perf_counter()
    for done in finished:
        await loop.create_connection(
            lambda done=done: _Connection(request, left, done), address.hostname, address.port
        )
    await asyncio.gather(*finished)
    return count / (time.perf_counter() - started)


def _numbered(i: int) -> dict[str, Any]:
    return {"i": i}


async def ingest_batches(
    api: str,
    admin_key: str,
    batches: int,
    size: int = 1000,
    payload: Callable[[int], dict[str, Any]] = _numbered,
) -> float:
    """Events per second through ``POST /v1/events/batch``, batches of ``size`` events (the
    i-th with ``payload(i)``), 4 at a time."""
    body = orjson.dumps(
        {
            "events": [
                {"tenant_id": "bench", "event_type": "invoice.paid", "payload": payload(i)}
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
