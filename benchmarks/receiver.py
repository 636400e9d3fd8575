"""A fast webhook receiver for benchmarks, run in its own process: answers 200 to every
POST, except under ``/hang/``, where it never answers (the sender's timeout ends those).
``GET /stats`` gives, per first path segment, the count of requests and the latency of each
from the event's ``timestamp`` to its arrival. ``python -m benchmarks.receiver PORT``.

It is a bare asyncio protocol on httptools' parser (uvicorn's), not a web framework: the
receiver shares the machine's two cores with the workers and Postgres, and the CPU it spends
is not hookpost's. With aiohttp's web server it took 70-90 us a request (a quarter of a core
during a drain); this one takes a fraction of that.
"""

import asyncio
import sys
import time
from collections import defaultdict
from datetime import datetime
from typing import cast

import httptools
import orjson

OK = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"


class Receiver(asyncio.Protocol):
    """One connection: parses requests (keep-alive) and answers each as it completes."""

    def __init__(self, latencies: dict[str, list[float]]) -> None:
        self._latencies = latencies
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            assert self._transport is not None
            self._transport.close()

    # httptools' callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        assert self._transport is not None
        kind = self._url.split(b"/")[1].split(b"?")[0].decode()
        method = self._parser.get_method()
        if method == b"GET":
            if kind != "stats":
                self._transport.write(NOT_FOUND)
                return
            body = orjson.dumps(dict(self._latencies))
            self._latencies.clear()
            self._transport.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(body), body)
            )
            return
        if kind == "hang":  # never answered: the connection stays busy until the sender gives up
            return
        if kind != "hook":  # "hook": throughput runs, nothing recorded
            event = orjson.loads(b"".join(self._body))
            sent = datetime.fromisoformat(event["timestamp"]).timestamp()
            self._latencies[kind].append(time.time() - sent)
        self._transport.write(OK)


async def _main(port: int) -> None:
    latencies: dict[str, list[float]] = defaultdict(list)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Receiver(latencies), "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_main(int(sys.argv[1])))
