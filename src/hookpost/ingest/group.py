"""Group commit for single-event emits: the events of concurrent ``POST /v1/events`` requests
of one API process are stored together, one statement and one commit for many.

While ``MAX_STORES`` stores are under way, the events that arrive wait and go together in the
next one: no timer, so a lone request is stored at once, and under load each statement
carries what came meanwhile. Each request still gets its own event's outcome, its own error
included (``emit.emit_each``), and an event the database refuses fails its own request alone
(the group is split until it is found); the events of one store share nothing else, a transaction no
more than before (a single event was stored in one statement of its own). A store's cost is
mostly per statement and per commit, so groups cut it several times over (the figures are in
``benchmarks/RESULTS.md`` and the commit that made this).
"""

import asyncio
from collections.abc import Sequence

import asyncpg

from hookpost.db.engine import is_outage
from hookpost.ingest.emit import EmitError, Emitted, EventIn, EventTypeCache, check, emit_each
from hookpost.ingest.validation import Validator

MAX_STORES = 2  # stores under way at once; fewer make larger groups
MAX_GROUP = 200  # events in one store


class EmitGroup:
    """``await emit(event)`` from each request; the group checks each event on its own
    (``emit.check``: a slow validation delays no other request's event), then stores them in
    turns."""

    def __init__(self, pool: asyncpg.Pool, types: EventTypeCache, validator: Validator) -> None:
        self._pool = pool
        self._types = types
        self._validator = validator
        self._waiting: list[tuple[EventIn, asyncio.Future[Emitted]]] = []
        self._running = 0  # store loops started and not yet finished
        self._tasks: set[asyncio.Task[None]] = set()  # the same, for close()
        self.stores = 0  # statements run, for tests and figures
        self.events = 0  # events they carried

    async def emit(self, event: EventIn) -> Emitted:
        """Check ``event``, then store it with the others waiting; raises its ``EmitError``
        (index 0: the request's only event), ``ValidationUnavailable``, or the database's error
        if its store failed."""
        [error] = await check(self._pool, [event], types=self._types, validator=self._validator)
        if error is not None:
            raise error
        outcome: asyncio.Future[Emitted] = asyncio.get_running_loop().create_future()
        self._waiting.append((event, outcome))
        if self._running < MAX_STORES:
            self._running += 1
            task = asyncio.create_task(self._store_waiting(), name="hookpost-emit-group")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await outcome

    async def _store_waiting(self) -> None:
        # The count drops in the same step that finds nothing waiting (no await between), so
        # an event that arrives later always sees a loop that will take it, or starts one. (A
        # task's done callback would run a step later: an event could slip in between and
        # wait forever.)
        try:
            while self._waiting:
                group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
                await self._store(group)
        finally:
            self._running -= 1

    async def _store(self, group: list[tuple[EventIn, asyncio.Future[Emitted]]]) -> None:
        """Store ``group`` in one statement and settle each request with its outcome. When the
        database refuses the statement for what it carries (a value, not an outage), no event
        of it was stored: each half is tried alone, down to the one event whose error it is,
        so a bad event fails only its own request."""
        try:
            async with self._pool.acquire() as connection:
                outcomes = await emit_each(connection, [event for event, _ in group])
        except Exception as error:
            if len(group) == 1 or is_outage(error):
                _settle([waiter for _, waiter in group], [error] * len(group))
                return
            middle = len(group) // 2
            await self._store(group[:middle])
            await self._store(group[middle:])
            return
        self.stores += 1
        self.events += len(group)
        _settle([waiter for _, waiter in group], outcomes)

    async def close(self) -> None:
        """Wait for the stores under way (before the pool closes)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _settle(
    waiters: Sequence[asyncio.Future[Emitted]], outcomes: Sequence[Emitted | BaseException]
) -> None:
    for waiter, outcome in zip(waiters, outcomes, strict=True):
        if waiter.done():  # its request was cancelled (the client went away)
            continue
        if isinstance(outcome, BaseException):
            if isinstance(outcome, EmitError):
                outcome.index = 0
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)
