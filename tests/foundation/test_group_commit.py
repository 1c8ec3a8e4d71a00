"""Group commit: concurrent callers' items go out in one call per group, each caller gets its own outcome."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from recsys.group_commit import GroupCommit


class Recorder:
    """A `send` that records its calls; the first call blocks until `release` is set (so others queue)."""

    def __init__(self, fail_item=None, fail_call: int | None = None) -> None:
        self.calls: list[list[int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_item = fail_item
        self.fail_call = fail_call

    def __call__(self, items: list[int]) -> list[object]:
        self.calls.append(list(items))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if self.fail_call == len(self.calls):
            raise ConnectionError("the store is down")
        return [ValueError(f"bad {i}") if i == self.fail_item else i * 10 for i in items]


def _queue_behind_first_call(send: Recorder, commit: GroupCommit, others: list[int]):
    """Submit 0 (whose call blocks), then `others` while it is in flight; returns the futures."""
    pool = ThreadPoolExecutor(len(others) + 1)
    first = pool.submit(commit.submit, 0)
    assert send.entered.wait(10)
    rest = [pool.submit(commit.submit, i) for i in others]
    while len(commit._queued) < len(others):  # every later caller is queued behind the call in flight
        threading.Event().wait(0.001)
    send.release.set()
    pool.shutdown(wait=True)
    return first, rest


def test_a_lone_caller_sends_at_once_alone():
    send = Recorder()
    send.release.set()
    commit = GroupCommit(send, max_batch=10)
    assert commit.submit(7) == 70
    assert commit.submit(8) == 80
    assert send.calls == [[7], [8]]


def test_callers_arriving_during_a_call_go_out_together_in_the_next():
    send = Recorder()
    commit = GroupCommit(send, max_batch=100)
    first, rest = _queue_behind_first_call(send, commit, list(range(1, 13)))
    assert first.result() == 0
    assert [f.result() for f in rest] == [i * 10 for i in range(1, 13)]
    assert send.calls[0] == [0]
    assert len(send.calls) == 2 and sorted(send.calls[1]) == list(range(1, 13))
    assert (commit.calls, commit.items) == (2, 13)


def test_groups_are_at_most_max_batch():
    send = Recorder()
    commit = GroupCommit(send, max_batch=5)
    _first, rest = _queue_behind_first_call(send, commit, list(range(1, 13)))
    assert [f.result() for f in rest] == [i * 10 for i in range(1, 13)]
    assert [len(c) for c in send.calls] == [1, 5, 5, 2]


def test_an_item_refused_fails_only_its_caller():
    send = Recorder(fail_item=4)
    commit = GroupCommit(send, max_batch=100)
    _first, rest = _queue_behind_first_call(send, commit, [3, 4, 5])
    assert rest[0].result() == 30 and rest[2].result() == 50
    with pytest.raises(ValueError, match="bad 4"):
        rest[1].result()


def test_a_failed_call_fails_every_caller_in_it_and_the_next_group_still_goes():
    send = Recorder(fail_call=2)
    commit = GroupCommit(send, max_batch=2)
    first, rest = _queue_behind_first_call(send, commit, [1, 2, 3])
    assert first.result() == 0
    outcomes = []
    for future in rest:
        try:
            outcomes.append(future.result())
        except ConnectionError:
            outcomes.append("down")
    assert sorted(outcomes, key=str) == [
        30,
        "down",
        "down",
    ]  # the second call (2 items) failed, the third not
    assert commit.submit(9) == 90  # and the commit still works


def test_a_send_that_answers_for_the_wrong_number_of_items_fails_its_group():
    commit = GroupCommit(lambda items: [1], max_batch=10)
    assert commit.submit(1) == 1
    commit2 = GroupCommit(lambda items: [], max_batch=10)
    with pytest.raises(RuntimeError, match="got 0 outcomes"):
        commit2.submit(1)


def test_max_batch_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(lambda items: items, max_batch=0)


def test_callers_of_a_failed_call_each_raise_their_own_exception():
    send = Recorder(fail_call=2)
    commit = GroupCommit(send, max_batch=10)
    _first, rest = _queue_behind_first_call(send, commit, [1, 2, 3])
    raised = []
    for future in rest:
        with pytest.raises(ConnectionError, match="the store is down") as info:
            future.result()
        raised.append(info.value)
    assert len({id(e) for e in raised}) == 3  # one object raised in several threads would share tracebacks


def test_a_caller_interrupted_while_queued_leaves_the_queue_and_nothing_hangs():
    """A signal that interrupts a queued caller (in the main thread) must not leave the group commit waiting
    for a sender that is gone: its item is not sent, and later callers are answered."""
    import signal

    class Interrupted(Exception):
        pass

    def interrupt(*_args):
        raise Interrupted

    send = Recorder()
    commit = GroupCommit(send, max_batch=10)
    answers: dict[int, int] = {}

    def submit(item: int) -> threading.Thread:  # a daemon thread: a regression hangs it, not the test run
        thread = threading.Thread(target=lambda: answers.update({item: commit.submit(item)}), daemon=True)
        thread.start()
        return thread

    first = submit(0)
    assert send.entered.wait(10)
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(Interrupted):
            commit.submit(1)  # queued behind the call in flight, then interrupted
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    send.release.set()
    first.join(10)
    later = submit(2)
    later.join(10)  # before the fix: waited forever for the interrupted sender
    assert answers == {0: 0, 2: 20}
    assert not any(1 in call for call in send.calls)
