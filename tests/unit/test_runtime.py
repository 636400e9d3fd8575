"""The garbage collector's settings for long-running processes."""

import gc
from collections.abc import Iterator

import pytest

from hookpost.runtime import YOUNG_THRESHOLD, settle_gc


@pytest.fixture
def gc_restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("gc_restored")
def test_objects_alive_at_start_up_are_frozen_and_young_collections_are_rarer() -> None:
    long_lived = [[index] for index in range(1000)]
    gc.unfreeze()
    _, middle, old = gc.get_threshold()

    settle_gc()

    assert gc.get_freeze_count() >= len(long_lived)
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)


@pytest.mark.usefixtures("gc_restored")
def test_cycles_made_after_start_up_are_still_collected() -> None:
    settle_gc()

    class Node:
        partner: "Node"

    first, second = Node(), Node()
    first.partner, second.partner = second, first
    del first, second

    assert gc.collect() >= 2
