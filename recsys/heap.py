"""Keep long-lived objects out of Python's cyclic garbage collector, so that its full collections stop pausing
a server.

A full (generation 2) collection walks every container object a process holds, holding the GIL. A serving
worker holds its model, the AWS clients' service descriptions and the imported modules: about 170,000
objects, 80-180 ms per full collection. The local AWS emulator holds every stored item: 500,000 objects after
a minute of load, 190-290 ms per full collection and more as its tables grow. Each pause stalls every request
the process is answering; under mixed load they set the p99 (bench/results/reliability.md).

`gc.freeze()` moves every object alive into a permanent generation that collections skip. Frozen objects are
still freed by reference counting when the last reference goes; only garbage in a reference cycle among them
waits until they are unfrozen.

- `freeze_long_lived()`: after start-up and after a model is loaded, collect once and freeze what is left.
- `FreezeLoop`: for a process whose long-lived data grows while it runs (the local AWS emulator). Every
  `interval_s` it collects the young generations and freezes the rest. What requests in flight hold is
  frozen with it, and their cyclic garbage is then never collected: about one object per emulator request,
  0.5 % of what the store itself grows by. It never makes a full collection: one, 10 minutes into a soak,
  stalled the emulator for about 8 s.
"""

from __future__ import annotations

import gc
import threading


def freeze_long_lived(full: bool = False) -> None:
    """Collect (every generation when `full`, else the young ones), then freeze what is alive.

    A full collection pauses the process for as long as a collection of everything takes: use it where no
    request waits (start-up); the young collection and the freeze cost well under a millisecond. (Not
    `gc.get_freeze_count()` here: it walks every frozen object.)"""
    gc.collect(2 if full else 1)
    gc.freeze()


class FreezeLoop:
    """A daemon thread that keeps the process's growing long-lived data frozen (see the module docstring)."""

    def __init__(self, interval_s: float = 1.0) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> FreezeLoop:
        self._thread = threading.Thread(target=self._run, name="gc-freeze", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            freeze_long_lived()
