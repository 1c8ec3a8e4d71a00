"""Group commit: what concurrent callers write goes out together, one call per group instead of one each.

The first caller to `submit` sends its item at once (with any that arrive before its call goes out); callers
that arrive while that call is in flight queue up, and when it returns, the first of them sends everything
queued (up to `max_batch`) in one call. Nobody waits for a timer: a lone caller pays one call, as before, and
under load the number of calls falls to one per round trip. Each caller gets its own item's outcome, the
result or the exception `send` gave for it; a whole call that fails fails every item in it (the sender gets
the exception itself, the others a copy of it).

`send(items)` returns one outcome per item, in order: a value, or an exception to raise in that item's caller.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Slot(Generic[T, R]):
    __slots__ = ("item", "leads", "outcome", "ready")

    def __init__(self, item: T) -> None:
        self.item = item
        self.ready = threading.Event()
        self.leads = False  # made the sender of the next group rather than given an outcome
        self.outcome: R | BaseException | None = None


class GroupCommit(Generic[T, R]):
    """Sends concurrent callers' items in groups through `send` (thread-safe; see the module)."""

    def __init__(self, send: Callable[[list[T]], Sequence[R | BaseException]], max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._send = send
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queued: list[_Slot[T, R]] = []
        self._sending = False  # a group is in flight, or its successor is named and about to go
        self.calls = 0
        self.items = 0

    def submit(self, item: T) -> R:
        """Send `item` with whatever else is queued; returns its result or raises its exception."""
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            self._queued.append(slot)
            leads = not self._sending
            self._sending = True
        if not leads:
            try:
                slot.ready.wait()
            except BaseException:  # interrupted (a signal in the main thread): never strand the queue
                if self._named_sender(slot):
                    self._send_group(slot)
                raise
            if not slot.leads:
                return self._unwrap(slot)
        self._send_group(slot)
        return self._unwrap(slot)

    def _named_sender(self, slot: _Slot[T, R]) -> bool:
        """For a caller that stops waiting: True when it was named the next sender (it must still send);
        otherwise it leaves the queue, or its group is on its way without it."""
        with self._lock:
            if slot.leads:
                return True
            if slot in self._queued:
                self._queued.remove(slot)
            return False

    def _send_group(self, own: _Slot[T, R]) -> None:
        with self._lock:
            group = self._queued[: self.max_batch]
            del self._queued[: self.max_batch]
        outcomes: list[R | BaseException] = []
        try:
            outcomes = list(self._send([s.item for s in group]))
            if len(outcomes) != len(group):
                raise RuntimeError(f"a group of {len(group)} got {len(outcomes)} outcomes")
        except BaseException as exc:  # one failure for the whole call: every caller in it sees it
            outcomes = [exc if slot is own else _copy_for_another_caller(exc) for slot in group]
        finally:  # whatever happened, the group's callers are answered and the next sender named
            if len(outcomes) != len(group):
                outcomes = [RuntimeError("the group's sender stopped before it was answered")] * len(group)
            for slot, outcome in zip(group, outcomes, strict=True):
                slot.outcome = outcome
            with self._lock:
                self.calls += 1
                self.items += len(group)
                following = self._queued[0] if self._queued else None
                if following is None:
                    self._sending = False
                else:
                    following.leads = True
            for slot in group:
                if slot is not own:
                    slot.ready.set()
            if following is not None:
                following.ready.set()

    @staticmethod
    def _unwrap(slot: _Slot[T, R]) -> R:
        outcome = slot.outcome
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[return-value]


def _copy_for_another_caller(exc: BaseException) -> BaseException:
    """The exception a whole call raised, as another thread's caller raises it: its own instance (one object
    raised in several threads would gather their tracebacks), and an interrupt only where it happened."""
    if isinstance(exc, Exception):
        try:
            twin = copy.copy(exc)
        except Exception:
            twin = None
        if type(twin) is type(exc) and twin is not exc:
            return twin
    return RuntimeError(f"the call that carried this item failed ({type(exc).__name__})")
