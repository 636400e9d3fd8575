"""Waking the workers once stored events have deliveries waiting: one NOTIFY on the
deliveries channel at a time per API process, shared by every emit that commits meanwhile.

The NOTIFY is not part of the transaction that stores the events. Postgres serializes the
commits of notifying transactions behind one lock held through each commit's WAL flush, so
concurrent single-event requests could not share a flush (measured: 32 connections committing
an insert each, 6,000-7,000/s plain, 1,700-2,000/s with a NOTIFY in each). Sent after the
commit, a NOTIFY can never wake a worker before the deliveries are visible. Should one be lost
(the process dies between the two, or the database is unreachable), the workers still look at
the queue every ``worker_poll_s``.
"""

import asyncio
import logging

import asyncpg

from hookpost.ingest.emit import NOTIFY

logger = logging.getLogger(__name__)


class WorkerWaker:
    """``wake()`` after a commit that queued deliveries. At most one NOTIFY is under way; the
    wake-ups that come while it is become one more NOTIFY after it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._wanted = False
        self._sending: asyncio.Task[None] | None = None
        self.sent = 0  # NOTIFYs sent, for tests and figures

    def wake(self) -> None:
        self._wanted = True
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send(), name="hookpost-wake-workers")

    async def _send(self) -> None:
        while self._wanted:
            self._wanted = False
            try:
                async with self._pool.acquire() as connection:
                    await connection.execute(NOTIFY)
            except Exception as error:  # never fail a request or a shutdown over a wake-up
                logger.warning("could not wake the workers (%s); they poll the queue", error)
                return
            self.sent += 1

    async def close(self) -> None:
        """Wait for the NOTIFY under way, if any (before the pool closes)."""
        if self._sending is not None:
            await self._sending
