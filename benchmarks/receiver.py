"""A fast webhook receiver for benchmarks, run in its own process: answers 200 to every
POST and counts them. ``python -m benchmarks.receiver PORT``."""

import asyncio
import sys

from aiohttp import web


async def _main(port: int) -> None:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
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
