"""recsys.heap: what start-up and the stores hold is skipped by full collections; what is made later is still
collected."""

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


def test_the_loop_keeps_freezing_what_is_stored_while_it_runs_until_stopped():
    loop = FreezeLoop(interval_s=0.01).start()
    try:
        stored = Node()  # what the emulator stores while it serves
        for _ in range(300):
            if not any(o is stored for o in gc.get_objects()):
                break
            threading.Event().wait(0.01)
        assert not any(o is stored for o in gc.get_objects())
    finally:
        loop.stop()
    assert loop._thread is not None and not loop._thread.is_alive()


@pytest.mark.parametrize("interval_s", [0.0, -1.0])
def test_the_loop_refuses_an_interval_that_makes_no_sense(interval_s):
    with pytest.raises(ValueError, match="interval_s"):
        FreezeLoop(interval_s=interval_s)
