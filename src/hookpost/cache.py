"""A short-lived cache for rows that rarely change and are read on every request (API keys,
event types, tenant ids by uid): each value is kept for ``ttl_s``. A change made in this
process takes effect at once (``forget``); in the other processes within ``ttl_s``."""

import time
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Values by key for ``ttl_s`` seconds, at most ``max_size`` of them (then it starts over)."""

    def __init__(self, ttl_s: float = 5.0, max_size: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_size = max_size
        self._found: dict[K, tuple[V, float]] = {}
        # Nothing is cached before this: the change being forgotten is committed only when its
        # request's route returns, and a read in between would cache the old row again.
        self._hold_until = 0.0

    def get(self, key: K) -> V | None:
        found = self._found.get(key)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    def put(self, key: K, value: V) -> None:
        now = time.monotonic()
        if now < self._hold_until:
            return
        if len(self._found) >= self.max_size:
            self._found.clear()
        self._found[key] = (value, now + self.ttl_s)

    def discard(self, key: K) -> None:
        """Drop the value of ``key``, if held."""
        self._found.pop(key, None)

    def forget(self, hold_s: float = 1.0) -> None:
        """Drop every value, and cache none for ``hold_s`` while the change commits."""
        self._found.clear()
        self._hold_until = time.monotonic() + hold_s
