"""The event type cache of the ingest path: what it keeps, for how long, and that a change
made in this process is never hidden by it."""

import pytest

from hookpost.ingest import emit
from hookpost.ingest.emit import EventTypeCache

PAID = emit._TypeRules(archived=False, schema=None)
ARCHIVED = emit._TypeRules(archived=True, schema=None)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(emit.time, "monotonic", lambda: now[0])
    return now


def test_a_type_is_kept_for_its_ttl(clock: list[float]) -> None:
    cache = EventTypeCache(ttl_s=5.0)
    assert cache.get("invoice.paid") is None
    cache.put("invoice.paid", PAID)
    clock[0] += 4.9
    assert cache.get("invoice.paid") is PAID
    clock[0] += 0.2
    assert cache.get("invoice.paid") is None


def test_forget_drops_everything_and_caches_nothing_while_the_change_commits(
    clock: list[float],
) -> None:
    cache = EventTypeCache(ttl_s=5.0)
    cache.put("invoice.paid", PAID)
    cache.forget(hold_s=1.0)
    assert cache.get("invoice.paid") is None
    cache.put("invoice.paid", PAID)  # read before the archive committed: not kept
    assert cache.get("invoice.paid") is None
    clock[0] += 1.1
    cache.put("invoice.paid", ARCHIVED)
    assert cache.get("invoice.paid") is ARCHIVED
