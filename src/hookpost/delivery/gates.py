"""Per-endpoint gates of one worker: how many requests may be open to each endpoint at once,
which leased deliveries wait for room, and the order in which sender slots take them.

- Requests open: a gate counts the requests actually on the wire to its endpoint, and admits
  a delivery only while that count is under the endpoint's current limit.
- The limit is earned (additive increase, multiplicative decrease, as TCP does): it starts at
  ``INITIAL_LIMIT``, grows by one a success until the first cut (slow start) and by one a
  limit's worth of successes after it, up to the endpoint's ``max_in_flight``; a timeout, a
  connection error, 429 or a 502/503/504 halves it (at most once for the requests sent under
  one limit), down to one. A hanging endpoint so keeps one request open, not ``max_in_flight``.
- Turns: endpoints with a waiting delivery and room queue for the slots one behind another, so
  a busy endpoint takes one slot at a time in turn with every other endpoint.
- How much to lease ahead (``hold``): about ``HOLD_S`` of the endpoint's work at its pace (its
  latency over its limit), at least its limit, and no more than ``UNKNOWN_HOLD`` until an
  attempt has finished; a slow or hanging endpoint holds few deliveries, so they neither fill
  the worker nor wait out their lease.

The gates of one worker know nothing of other workers' requests: the queue counts what the
others hold against what a worker may lease (``queue.claim``).
"""

import asyncio
import math
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

from hookpost.delivery.sender import ErrorKind, SendResult

INITIAL_LIMIT = 2.0
HOLD_S = 1.0
UNKNOWN_HOLD = 8  # the most held for an endpoint before one of its attempts has finished
LATENCY_WEIGHT = 0.2  # the weight of the newest duration in the latency average
OVERLOAD_STATUSES = frozenset({429, 502, 503, 504})
OVERLOAD_ERRORS = frozenset({ErrorKind.TIMEOUT, ErrorKind.CONNECT, ErrorKind.DNS, ErrorKind.TLS})

T = TypeVar("T")


class Signal(Enum):
    """What an attempt says of the endpoint's capacity."""

    SUCCESS = "success"  # a 2xx: the limit grows
    OVERLOAD = "overload"  # it could not cope: the limit is cut
    NEUTRAL = "neutral"  # an answer that says nothing of capacity (400, 404, a blocked URL)


def signal_of(result: SendResult) -> Signal:
    if result.status_code is not None:
        if 200 <= result.status_code < 300:
            return Signal.SUCCESS
        if result.status_code in OVERLOAD_STATUSES:
            return Signal.OVERLOAD
        return Signal.NEUTRAL
    return Signal.OVERLOAD if result.error_kind in OVERLOAD_ERRORS else Signal.NEUTRAL


@dataclass(slots=True, eq=False)
class Gate(Generic[T]):
    """One endpoint's gate in this worker."""

    endpoint_id: uuid.UUID
    ceiling: int  # the endpoint's max_in_flight
    limit: float = INITIAL_LIMIT
    open: int = 0
    waiting: deque[tuple[float, T]] = field(default_factory=deque)  # (leased at, item)
    opened: dict[int, float] = field(default_factory=dict)  # open request -> when it started
    latency_s: float | None = None  # average duration of its attempts
    slow_start: bool = True
    cut_at: float = -math.inf  # when the limit was last cut (monotonic)
    queued: bool = False  # waiting for its turn

    @property
    def current_limit(self) -> int:
        return max(1, min(int(self.limit), self.ceiling))

    @property
    def room(self) -> int:
        return max(self.current_limit - self.open, 0)

    def pace_s(self, now: float) -> float:
        """Seconds a delivery takes at the current limit: the average latency, or the age of
        the oldest open request when that is longer (a hanging endpoint shows at once)."""
        latency = self.latency_s or 0.0
        if self.opened:
            latency = max(latency, now - min(self.opened.values()))
        return latency / self.current_limit

    def hold(self, now: float, most: int) -> int:
        """How many leased deliveries this worker should hold for the endpoint: ``HOLD_S`` of
        work at its pace, at least its limit, at most ``most``."""
        pace = self.pace_s(now)
        ahead = most if pace <= 0 else min(most, int(HOLD_S / pace))
        if self.latency_s is None:  # its pace is a guess until an attempt has finished
            ahead = min(ahead, UNKNOWN_HOLD)
        return max(ahead, self.current_limit)

    def learn(self, signal: Signal, duration_s: float, started_at: float) -> None:
        """Adjust the limit and the latency average after an attempt that started at
        ``started_at`` (monotonic) took ``duration_s``."""
        if self.latency_s is None:
            self.latency_s = duration_s
        else:
            self.latency_s += LATENCY_WEIGHT * (duration_s - self.latency_s)
        if signal is Signal.SUCCESS:
            step = 1.0 if self.slow_start else 1.0 / max(self.limit, 1.0)
            self.limit = min(self.limit + step, float(self.ceiling))
        elif signal is Signal.OVERLOAD and started_at > self.cut_at:
            # requests sent before the last cut were sent under the old limit: one cut for them
            self.slow_start = False
            self.limit = max(1.0, min(self.limit, float(self.ceiling)) / 2)
            self.cut_at = started_at


@dataclass(frozen=True)
class Holding:
    """What a worker holds of each endpoint, as a claim reads it: ``room`` is how many more
    deliveries it would lease (``default_room`` for endpoints it holds nothing of and knows
    nothing about), ``held`` how many it holds, ``pace_s`` its seconds a delivery."""

    room: dict[uuid.UUID, int]
    held: dict[uuid.UUID, int]
    pace_s: dict[uuid.UUID, float]
    default_room: int

    def room_of(self, endpoint_id: uuid.UUID) -> int:
        return self.room.get(endpoint_id, self.default_room)


class Gates(Generic[T]):
    """The gates of one worker: ``add`` leased deliveries, ``await take()`` the next one whose
    endpoint has room, ``finish`` it when its attempt is over."""

    def __init__(self) -> None:
        self._gates: dict[uuid.UUID, Gate[T]] = {}
        self._turns: asyncio.Queue[Gate[T]] = asyncio.Queue()
        self._tokens = 0
        self.open = 0  # requests open, over all endpoints
        self.waiting = 0  # deliveries waiting, over all endpoints

    def __iter__(self) -> Iterator[Gate[T]]:
        return iter(self._gates.values())

    def get(self, endpoint_id: uuid.UUID) -> Gate[T] | None:
        return self._gates.get(endpoint_id)

    def add(self, endpoint_id: uuid.UUID, ceiling: int, item: T, leased_at: float) -> None:
        gate = self._gates.get(endpoint_id)
        if gate is None:
            gate = self._gates[endpoint_id] = Gate(
                endpoint_id, ceiling, limit=min(INITIAL_LIMIT, float(ceiling))
            )
        gate.ceiling = ceiling
        gate.waiting.append((leased_at, item))
        self.waiting += 1
        self._queue(gate)

    async def take(self) -> tuple[Gate[T], int, T]:
        """The next delivery whose endpoint has room, its gate and the token that
        ``finish`` takes; the request counts as open from now."""
        while True:
            gate = await self._turns.get()
            gate.queued = False
            if not (gate.room and gate.waiting):
                continue  # its limit was cut, or its deliveries were handed back, meanwhile
            _, item = gate.waiting.popleft()
            self.waiting -= 1
            self._tokens += 1
            gate.opened[self._tokens] = time.monotonic()
            gate.open += 1
            self.open += 1
            self._queue(gate)  # behind every endpoint queued meanwhile
            return gate, self._tokens, item

    def finish(self, gate: Gate[T], token: int, signal: Signal | None, duration_s: float) -> None:
        """The request of ``token`` is over; ``signal`` None: nothing was sent after all."""
        started_at = gate.opened.pop(token)
        gate.open -= 1
        self.open -= 1
        if signal is not None:
            gate.learn(signal, duration_s, started_at)
        self._queue(gate)

    def _queue(self, gate: Gate[T]) -> None:
        if gate.room and gate.waiting and not gate.queued:
            gate.queued = True
            self._turns.put_nowait(gate)

    def usable(self, now: float, most: int) -> int:
        """The deliveries under way or soon to be: the open requests, and of each endpoint's
        waiting deliveries at most its hold (the rest will wait long: they take no room in
        the worker's prefetch)."""
        return self.open + sum(
            min(len(gate.waiting), gate.hold(now, most)) for gate in self._gates.values()
        )

    def holding(self, now: float, most: int) -> Holding:
        room, held, pace = {}, {}, {}
        for endpoint_id, gate in self._gates.items():
            ahead = gate.open + len(gate.waiting)
            hold = gate.hold(now, most)
            if ahead or hold != most:
                room[endpoint_id] = max(hold - ahead, 0)
                held[endpoint_id] = ahead
                pace[endpoint_id] = gate.pace_s(now)
        return Holding(room=room, held=held, pace_s=pace, default_room=most)

    def expired(self, leased_before: float) -> list[T]:
        """Take out the waiting deliveries leased before ``leased_before``."""
        found: list[T] = []
        for gate in self._gates.values():
            while gate.waiting and gate.waiting[0][0] < leased_before:
                found.append(gate.waiting.popleft()[1])
                self.waiting -= 1
        return found

    def take_all_waiting(self) -> list[T]:
        """Take out every waiting delivery (a stopping worker releases them)."""
        found: list[T] = []
        for gate in self._gates.values():
            found.extend(item for _, item in gate.waiting)
            gate.waiting.clear()
        self.waiting = 0
        return found

    def forget_idle(self) -> None:
        """Drop the gates with nothing waiting or open that are back at their ceiling, so the
        dictionary does not grow with every endpoint ever served; a gate still holding a cut
        limit is kept, so a slow endpoint does not start over."""
        for endpoint_id in [
            endpoint_id
            for endpoint_id, gate in self._gates.items()
            if not (gate.open or gate.waiting or gate.queued) and gate.limit >= gate.ceiling
        ]:
            del self._gates[endpoint_id]
