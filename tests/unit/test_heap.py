"""freeze_startup_heap: what is alive goes into the permanent generation, garbage does not."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from kumo.server.heap import freeze_startup_heap


class _Node:
    def __init__(self) -> None:
        self.peer: _Node | None = None


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # back where the other tests run


@pytest.mark.usefixtures("unfrozen")
def test_freezes_the_live_heap_after_collecting_its_garbage() -> None:
    kept = [object() for _ in range(1000)]
    cycle = _Node()
    cycle.peer = _Node()
    cycle.peer.peer = cycle
    gone = weakref.ref(cycle)
    del cycle  # garbage only a collection frees (a cycle)
    assert gc.get_freeze_count() == 0

    freeze_startup_heap()

    assert gone() is None  # collected first, so not kept alive by the freeze
    assert gc.get_freeze_count() >= len(kept)
    assert all(len(gc.get_objects(generation)) < len(kept) for generation in range(3))
