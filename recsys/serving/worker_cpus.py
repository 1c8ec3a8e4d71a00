"""A CPU of its own for each worker process of `recsys serve`, so that a worker's threads stay on one core.

A worker answers on several threads that share one GIL, and numpy, hnswlib and every socket call release it
for short steps. When the threads of one process run on different cores, each release lets a thread on the
other core take the GIL at once, and the first thread then waits to get it back: the GIL crosses between
cores many times per request, with a context switch and cold caches each time. Kept on one core, a worker's
threads take turns there, while the other workers use the other cores. On 2 cores with 2 workers this served
1.22x the cache misses per second, halved the kernel time, cut the context switches per miss from 19 to 6, and
kept p99 at 15 ms at a fixed 1,000 misses/s (bench/results/serving.md, "Eighteenth session").

`WorkerCpus` runs in the server's main process (granian's or gunicorn's master): a daemon thread that, every
`interval_s`, lists the main process's children (its workers) and pins every thread of each to one CPU among
those this process may use (`os.sched_getaffinity`): the CPU the fewest workers hold, the lowest on a tie. A
worker that exits gives its CPU back; one respawned in its place takes it. Threads a worker starts later run
where the thread that starts them runs, and any that do not are pinned in the next round. Linux only
(sched_setaffinity and /proc); elsewhere `supported()` is False and nothing is pinned. `recsys serve` starts
it when there is one worker per CPU it may use (`--pin-cpus`, the default; `recsys.cli.serve`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

PROC = "/proc"


def supported() -> bool:
    """Whether this system can pin threads to CPUs (Linux: sched_setaffinity and /proc)."""
    return hasattr(os, "sched_setaffinity") and os.path.isdir(f"{PROC}/self/task")


def available_cpus() -> list[int]:
    """The CPUs this process may run on (all of them where that cannot be asked)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def child_pids(parent: int) -> list[int]:
    """The processes whose parent is `parent` (from /proc; none where there is no /proc)."""
    try:
        names = os.listdir(PROC)
    except OSError:
        return []
    found = []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"{PROC}/{name}/stat", "rb") as stat:
                fields = (
                    stat.read().rsplit(b")", 1)[-1].split()
                )  # after the command name, which may hold spaces
        except OSError:  # it exited meanwhile
            continue
        if len(fields) > 1 and fields[1] == str(parent).encode():
            found.append(int(name))
    return sorted(found)


def thread_ids(pid: int) -> list[int]:
    """The threads of process `pid` (none once it has exited)."""
    try:
        return [int(tid) for tid in os.listdir(f"{PROC}/{pid}/task")]
    except OSError:
        return []


class CpuAssignment:
    """Which CPU each worker holds: a new worker gets the CPU the fewest workers hold (the lowest on a tie)."""

    def __init__(self, cpus: Iterable[int]) -> None:
        self.cpus = sorted(set(cpus))
        if not self.cpus:
            raise ValueError("no CPU to assign")
        self.held: dict[int, int] = {}

    def update(self, workers: Iterable[int]) -> dict[int, int]:
        """The CPU of each of `workers` (the processes alive now): those gone give theirs back first."""
        alive = set(workers)
        for pid in [p for p in self.held if p not in alive]:
            del self.held[pid]
        for pid in sorted(alive - self.held.keys()):
            load = dict.fromkeys(self.cpus, 0)
            for cpu in self.held.values():
                load[cpu] += 1
            self.held[pid] = min(self.cpus, key=lambda cpu: (load[cpu], cpu))
        return dict(self.held)


class WorkerCpus:
    """Pins the threads of each child process of `parent` (default: this process) to a CPU of its own."""

    def __init__(
        self,
        parent: int | None = None,
        interval_s: float = 0.5,
        cpus: Iterable[int] | None = None,
        list_children: Callable[[int], list[int]] = child_pids,
    ) -> None:
        self.parent = os.getpid() if parent is None else parent
        self.interval_s = interval_s
        self.assignment = CpuAssignment(available_cpus() if cpus is None else cpus)
        self._list_children = list_children
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned = False

    def pin_once(self) -> dict[int, int]:
        """Pin every thread of every worker now; returns each worker's CPU."""
        held = self.assignment.update(self._list_children(self.parent))
        for pid, cpu in held.items():
            for tid in thread_ids(pid):
                try:
                    if os.sched_getaffinity(tid) != {cpu}:
                        os.sched_setaffinity(tid, {cpu})
                except OSError:  # the thread ended meanwhile, or may not be moved: left where it runs
                    continue
        return held

    def start(self) -> WorkerCpus:
        """Pin in the background from now on (nothing where pinning is not supported)."""
        if not supported():
            log.info("worker processes are not pinned to CPUs: not supported on this system")
            return self
        self._thread = threading.Thread(target=self._run, name="recsys-worker-cpus", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.pin_once()
            except Exception as exc:  # pinning only speeds the server up: it never stops it
                if not self._warned:
                    log.warning("pinning worker processes to CPUs failed: %s", exc)
                    self._warned = True
