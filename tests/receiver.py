"""A real HTTP receiver on 127.0.0.1 for delivery tests, scripted per test.

Each request is recorded; ``script(n, request)`` (n counts from 0) says how to answer: a
``Reply`` (status, headers, body, delay), or ``DROP`` to close the connection unanswered.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay_s: float = 0.0


DROP = Reply(status=-1)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()


Script = Callable[[int, Received], Reply]


class Receiver:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[Received] = []
        self.arrived = asyncio.Condition()
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        received = Received(
            path=request.path_qs,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.read(),
            at=time.monotonic(),
        )
        index = len(self.requests)
        self.requests.append(received)
        async with self.arrived:
            self.arrived.notify_all()
        reply = self.script(index, received)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply is DROP:
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        return web.Response(status=reply.status, headers=reply.headers, body=reply.body)

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait until ``count`` requests have arrived."""
        async with asyncio.timeout(timeout), self.arrived:
            await self.arrived.wait_for(lambda: len(self.requests) >= count)
        return self.requests


@asynccontextmanager
async def receiver(script: Script = lambda n, r: Reply()) -> AsyncIterator[Receiver]:
    """A running receiver on an ephemeral port of 127.0.0.1."""
    target = Receiver(script)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", target.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    target.url = f"http://127.0.0.1:{port}"
    try:
        yield target
    finally:
        await runner.cleanup()
