"""The short-lived caches of API keys and event types: what they keep, for how long, and
that a change made in this process is never hidden by them."""

import pytest

from hookpost import cache
from hookpost.cache import TtlCache


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(cache.time, "monotonic", lambda: now[0])
    return now


def test_a_value_is_kept_for_the_ttl(clock: list[float]) -> None:
    types: TtlCache[str, str] = TtlCache(ttl_s=5.0)
    assert types.get("invoice.paid") is None
    types.put("invoice.paid", "live")
    clock[0] += 4.9
    assert types.get("invoice.paid") == "live"
    clock[0] += 0.2
    assert types.get("invoice.paid") is None


def test_forget_drops_everything_and_caches_nothing_while_the_change_commits(
    clock: list[float],
) -> None:
    keys: TtlCache[bytes, str] = TtlCache(ttl_s=5.0)
    keys.put(b"hash", "principal")
    keys.forget(hold_s=1.0)  # the key is being revoked
    assert keys.get(b"hash") is None
    keys.put(b"hash", "principal")  # read before the revocation committed: not kept
    assert keys.get(b"hash") is None
    clock[0] += 1.1
    keys.put(b"other", "principal")
    assert keys.get(b"other") == "principal"


def test_it_starts_over_when_full(clock: list[float]) -> None:
    small: TtlCache[int, int] = TtlCache(ttl_s=5.0, max_size=2)
    small.put(1, 1)
    small.put(2, 2)
    small.put(3, 3)
    assert (small.get(1), small.get(2), small.get(3)) == (None, None, 3)
