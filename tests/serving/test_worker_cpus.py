"""Each worker process of `recsys serve` is kept on a CPU of its own (`recsys.serving.worker_cpus`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from recsys.local.processes import wait_until
from recsys.serving.worker_cpus import (
    CpuAssignment,
    WorkerCpus,
    available_cpus,
    child_pids,
    supported,
    thread_ids,
)

# A worker stand-in: a process with a few threads that wait (as an API worker's pool does).
_THREADED = (
    "import threading, time\n"
    "for _ in range(3): threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
    "time.sleep(60)"
)

needs_two_cpus = pytest.mark.skipif(
    not supported() or len(available_cpus()) < 2, reason="pinning needs Linux and at least 2 CPUs"
)


def test_a_new_worker_takes_the_cpu_fewest_workers_hold() -> None:
    cpus = CpuAssignment([0, 1])
    assert cpus.update([10, 11]) == {10: 0, 11: 1}
    assert cpus.update([10, 11, 12]) == {10: 0, 11: 1, 12: 0}  # more workers than CPUs: shared in turn
    assert cpus.update([11, 12, 13]) == {11: 1, 12: 0, 13: 0}  # 10 exited: its CPU went to the newcomer
    assert cpus.update([13, 14]) == {13: 0, 14: 1}
    with pytest.raises(ValueError):
        CpuAssignment([])


def test_workers_replaced_one_by_one_end_on_different_cpus() -> None:
    """A rolling restart starts each new worker before the old one stops: the CPUs are evened out again."""
    cpus = CpuAssignment([0, 1])
    cpus.update([1, 2])
    for workers in ([1, 2, 3], [2, 3], [2, 3, 4], [3, 4]):
        held = cpus.update(workers)
    assert sorted(held.values()) == [0, 1]
    cpus.use([1])  # the server may use CPU 1 alone now
    assert cpus.update([3, 4]) == {3: 1, 4: 1}


@pytest.mark.parametrize(("processes", "cpus", "pinned"), [(2, [0, 1], True), (1, [0, 1], False),
                                                            (3, [0, 1], False), (1, [0], False)])  # fmt: skip
def test_serve_pins_only_with_one_process_per_cpu(monkeypatch, processes, cpus, pinned) -> None:
    from recsys.cli import serve
    from recsys.serving import worker_cpus

    monkeypatch.setattr(worker_cpus, "supported", lambda: True)
    monkeypatch.setattr(worker_cpus, "available_cpus", lambda: cpus)
    pinning = serve._pin_workers(processes)
    try:
        assert (pinning is not None) == pinned
    finally:
        if pinning is not None:
            pinning.stop()


@pytest.fixture()
def workers() -> Iterator[list[subprocess.Popen]]:
    started = [subprocess.Popen([sys.executable, "-c", _THREADED]) for _ in range(2)]
    try:
        assert wait_until(lambda: all(len(thread_ids(p.pid)) >= 4 for p in started), 30)
        yield started
    finally:
        for proc in started:
            proc.kill()
            proc.wait()


def _cpus_of(pid: int) -> set[frozenset[int]]:
    return {frozenset(os.sched_getaffinity(tid)) for tid in thread_ids(pid)}


@pytest.mark.skipif(not supported(), reason="reads /proc (Linux)")
def test_children_are_found_without_the_kernels_lists_too(workers, monkeypatch) -> None:
    from recsys.serving import worker_cpus

    pids = {p.pid for p in workers}
    assert pids <= set(child_pids(os.getpid()))
    real_open = open

    def no_children_lists(path, *args, **kwargs):  # a kernel built without /proc/PID/task/TID/children
        if str(path).endswith("/children"):
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(worker_cpus, "open", no_children_lists, raising=False)
    assert pids <= set(child_pids(os.getpid()))  # found by scanning every process's parent
    workers[0].kill()  # not waited for: a zombie until then, no longer a worker to pin
    assert wait_until(lambda: workers[0].pid not in child_pids(os.getpid()), 10)
    assert workers[1].pid in child_pids(os.getpid())


@needs_two_cpus
def test_every_thread_of_each_worker_is_kept_on_that_workers_own_cpu(workers) -> None:
    pids = [p.pid for p in workers]
    assert set(pids) <= set(child_pids(os.getpid()))  # found as this process's children
    pinning = WorkerCpus(list_children=lambda _parent: pids)  # this test process has other children

    held = pinning.pin_once()

    assert set(held) == set(pids) and held[pids[0]] != held[pids[1]]
    for pid in pids:
        assert _cpus_of(pid) == {frozenset({held[pid]})}  # all four threads, on one CPU


@needs_two_cpus
def test_the_background_thread_pins_workers_that_start_later() -> None:
    started: list[subprocess.Popen] = []
    pinning = WorkerCpus(interval_s=0.05, list_children=lambda _parent: [p.pid for p in started]).start()
    try:
        started.extend(subprocess.Popen([sys.executable, "-c", _THREADED]) for _ in range(2))
        pids = [p.pid for p in started]
        assert wait_until(lambda: all(len(thread_ids(pid)) >= 4 for pid in pids), 30)
        assert wait_until(lambda: all(len(_cpus_of(pid)) == 1 and len(next(iter(_cpus_of(pid)))) == 1
                                      for pid in pids), 10)  # fmt: skip
        assert _cpus_of(pids[0]) != _cpus_of(pids[1])
    finally:
        pinning.stop()
        for proc in started:
            proc.kill()
            proc.wait()
