"""Progress of long jobs, reported by the code that does them and shown by whoever listens (the CLI).

A job calls `report("two-tower training", done, total, "epochs")` as it goes; with no listener that costs a
dictionary lookup. The CLI subscribes with `listening(callback)` and draws progress bars; nothing else does.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressUpdate:
    """`completed` of `total` units of one task (`total` None when unknown)."""

    task: str
    completed: int
    total: int | None
    unit: str


Listener = Callable[[ProgressUpdate], None]
_listeners: list[Listener] = []
_lock = threading.Lock()


def report(task: str, completed: int, total: int | None = None, unit: str = "items") -> None:
    """Tell the listeners (if any) how far `task` is; a listener's failure never stops the job."""
    if not _listeners:
        return
    update = ProgressUpdate(task, int(completed), None if total is None else int(total), unit)
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        with contextlib.suppress(Exception):  # progress is for show: the job goes on
            listener(update)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Receive every `report` made while the block runs."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)
