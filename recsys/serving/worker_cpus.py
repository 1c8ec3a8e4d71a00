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

import errno
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
    """The live (not zombie) processes whose parent is `parent`, from /proc: the `children` list of each of its
    threads where the kernel keeps one, else a scan of every process; none where there is no /proc."""
    found: set[int] = set()
    try:
        for tid in os.listdir(f"{PROC}/{parent}/task"):
            with open(f"{PROC}/{parent}/task/{tid}/children") as children:
                found.update(int(pid) for pid in children.read().split())
    except FileNotFoundError:  # a kernel without the lists, or a thread gone meanwhile: scan every process
        found = {pid for pid, ppid in _parents() if ppid == parent}
    except OSError:
        return []
    return sorted(pid for pid in found if _state(pid) not in (None, "Z"))


def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces); None once it has exited."""
    try:
        with open(f"{PROC}/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[-1].split()
    except OSError:
        return None


def _state(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[0].decode() if fields else None


def _parents() -> list[tuple[int, int]]:
    """(pid, parent pid) of every process."""
    pairs = []
    for name in os.listdir(PROC):
        fields = _stat_fields(int(name)) if name.isdigit() else None
        if fields is not None and len(fields) > 1:
            pairs.append((int(name), int(fields[1])))
    return pairs


def thread_ids(pid: int) -> list[int]:
    """The threads of process `pid` (none once it has exited)."""
    try:
        return [int(tid) for tid in os.listdir(f"{PROC}/{pid}/task")]
    except OSError:
        return []


class CpuAssignment:
    """Which CPU each worker holds: a new worker gets the CPU the fewest workers hold (the lowest on a tie), and
    when workers exit, the busiest CPU hands one to the idlest until no two differ by more than one worker (a
    server that starts each new worker before it stops the old one would otherwise pile them on one CPU)."""

    def __init__(self, cpus: Iterable[int]) -> None:
        self.held: dict[int, int] = {}
        self.cpus: list[int] = []
        self.use(cpus)

    def use(self, cpus: Iterable[int]) -> None:
        """Assign among `cpus` from now on (the CPUs the server may use changed); workers on others move."""
        cpus = sorted(set(cpus))
        if not cpus:
            raise ValueError("no CPU to assign")
        self.cpus = cpus
        self.held = {pid: cpu for pid, cpu in self.held.items() if cpu in cpus}

    def update(self, workers: Iterable[int]) -> dict[int, int]:
        """The CPU of each of `workers` (the processes alive now): those gone give theirs back first."""
        alive = set(workers)
        self.held = {pid: cpu for pid, cpu in self.held.items() if pid in alive}
        for pid in sorted(alive - self.held.keys()):
            load = self._load()
            self.held[pid] = min(self.cpus, key=lambda cpu: (load[cpu], cpu))
        while True:
            load = self._load()
            busiest = max(self.cpus, key=lambda cpu: (load[cpu], -cpu))
            idlest = min(self.cpus, key=lambda cpu: (load[cpu], cpu))
            if load[busiest] - load[idlest] <= 1:
                return dict(self.held)
            # pids rise: the worker started last on the busiest CPU moves
            newest = max(pid for pid, cpu in self.held.items() if cpu == busiest)
            self.held[newest] = idlest

    def _load(self) -> dict[int, int]:
        load = dict.fromkeys(self.cpus, 0)
        for cpu in self.held.values():
            load[cpu] += 1
        return load


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
        refused: OSError | None = None
        for pid, cpu in held.items():
            for tid in thread_ids(pid):
                try:
                    if os.sched_getaffinity(tid) != {cpu}:
                        os.sched_setaffinity(tid, {cpu})
                except ProcessLookupError:  # the thread ended meanwhile
                    continue
                except OSError as exc:
                    # not allowed here, or the CPU is no longer the server's: left where it runs
                    refused = exc
        if refused is not None:
            self._warn(f"a worker thread could not be pinned ({refused}); it runs where the system puts it")
            if refused.errno == errno.EINVAL:  # the CPUs this server may use changed (a cgroup's CPU set)
                self.assignment.use(available_cpus())
        return held

    def _warn(self, message: str) -> None:
        if not self._warned:
            log.warning(message)
            self._warned = True

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
                self._warn(f"pinning worker processes to CPUs failed: {exc}")
