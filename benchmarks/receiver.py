"""A fast webhook receiver for benchmarks, run in its own process: answers 200 to every
POST, except under ``/hang/``, where it never answers (the sender's timeout ends those).
``GET /stats`` gives, per first path segment, the count of requests and the latency of each
from the event's ``timestamp`` to its arrival. ``python -m benchmarks.receiver PORT``."""

import asyncio
import sys
import time
from collections import defaultdict
from datetime import datetime

import orjson
from aiohttp import web


async def _main(port: int) -> None:
    latencies: dict[str, list[float]] = defaultdict(list)

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        kind = request.path.split("/")[1]
        if kind == "hang":
            await asyncio.sleep(3600)
        if kind != "hook":  # "hook": throughput runs, nothing recorded
            sent = datetime.fromisoformat(orjson.loads(body)["timestamp"]).timestamp()
            latencies[kind].append(time.time() - sent)
        return web.Response(text="ok")

    async def stats(request: web.Request) -> web.Response:
        answer = web.json_response(dict(latencies))
        latencies.clear()
        return answer

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_main(int(sys.argv[1])))
