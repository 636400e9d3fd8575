"""Running a worker inside a test, and waiting for the database to reach a state."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from hookpost.delivery.sender import Sender
from hookpost.delivery.worker import Worker
from hookpost.ops.events import OperationalEvents
from hookpost.settings import Settings

# A whole retry schedule in well under a second: 0.05, 0.1, 0.2 s between four attempts.
FAST = {
    "retry_base_s": 0.05,
    "retry_factor": 2.0,
    "retry_cap_s": 2.0,
    "retry_jitter": 0.0,
    "retry_max_attempts": 4,
    "retry_max_age_s": 60.0,
    "worker_flush_s": 0.01,
    "worker_poll_s": 0.2,
    "worker_grace_s": 2.0,
    "delivery_timeout_s": 2.0,
    "lease_s": 10.0,
}


@asynccontextmanager
async def running_worker(
    settings: Settings, *, sender: Sender | None = None, **overrides: Any
) -> AsyncIterator[Worker]:
    """A worker on the test database (``sender``: instead of its own), with hookpost's
    operational events as ``hookpost run`` gives it, stopped gracefully when the block ends."""
    settings = settings.model_copy(update=FAST | overrides)
    worker = Worker(settings, sender=sender, after_flush=OperationalEvents(settings))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s (last: {value!r})")
        await asyncio.sleep(0.02)
