"""recsys.heap: what start-up and the stores hold is skipped by full collections, and no cyclic garbage is kept
for good."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

from recsys.heap import FreezeLoop, freeze_long_lived


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> Node:
    """One node of a two-object reference cycle: once dropped, only the collector frees it."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a


@pytest.fixture(autouse=True)
def unfrozen():
    yield
    gc.unfreeze()
    gc.collect()


def test_what_is_alive_when_frozen_is_left_out_of_collections():
    kept = Node()
    freeze_long_lived(full=True)
    assert gc.get_freeze_count() > 0
    assert not any(o is kept for o in gc.get_objects())  # collections walk only the unfrozen objects
    assert kept.__dict__ == {"other": None}  # still an ordinary, usable object


def test_garbage_made_after_freezing_is_still_collected():
    freeze_long_lived()
    ref = weakref.ref(cycle())
    gc.collect()
    assert ref() is None


def test_the_loop_reclaims_cyclic_garbage_that_was_frozen_when_its_full_collection_is_due():
    now = [0.0]
    loop = FreezeLoop(interval_s=1.0, full_every_s=60.0, clock=lambda: now[0])
    node = cycle()
    ref = weakref.ref(node)
    loop.step()  # frozen while in use
    del node  # now garbage, among the frozen objects
    now[0] = 30.0
    loop.step()
    gc.collect()
    assert ref() is not None  # skipped until the full collection
    now[0] = 61.0
    loop.step()
    assert ref() is None


def test_the_loop_runs_in_the_background_until_stopped():
    loop = FreezeLoop(interval_s=0.01, full_every_s=1.0).start()
    try:
        for _ in range(500):
            if gc.get_freeze_count():
                break
            threading.Event().wait(0.01)
        assert gc.get_freeze_count() > 0
    finally:
        loop.stop()


@pytest.mark.parametrize("interval_s, full_every_s", [(0.0, 10.0), (-1.0, 10.0), (5.0, 1.0)])
def test_the_loop_refuses_intervals_that_make_no_sense(interval_s, full_every_s):
    with pytest.raises(ValueError, match="interval_s"):
        FreezeLoop(interval_s=interval_s, full_every_s=full_every_s)
