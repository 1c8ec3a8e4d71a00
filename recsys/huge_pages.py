"""Back large, randomly read memory with transparent huge pages (Linux), for memory numpy does not allocate.

An HNSW query walks a few thousand scattered graph nodes (the index is 56 MB at 100k videos, 536 MB at 1M).
With 4 KiB pages nearly every node read also misses the TLB, and the page tables themselves fall out of the
caches between requests. numpy already asks the kernel for huge pages for its large arrays; hnswlib's C++
allocation does not, and Python cannot reach it. `huge_pages_for_new_memory()` wraps the code that allocates
such memory: the anonymous mappings of at least `MIN_BYTES` that appear while it runs are marked
`MADV_HUGEPAGE` and collapsed into huge pages (`MADV_COLLAPSE`, Linux 6.1+) by a background thread, not
whenever the kernel's own scan gets to them (minutes for a large index). The collapse copies the memory
(1.4 s for the 1M-video index here): the index answers meanwhile, so a model load does not wait for it. A
fork waits for it to finish (the batch path forks workers after loading the model): a collapse after the
fork would give the parent its own copy of pages its children still share.
(bench/results/serving.md: ~3 % of a request at 100k videos.)

It is a speed-up only: on another OS, an older kernel, or with transparent huge pages set to `never`, the
memory stays as it was and nothing fails. Another thread's mapping made meanwhile, or an older one the
kernel merged with a new one, may get the same advice, which is harmless.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

HUGE_PAGE = 2 << 20
MIN_BYTES = 4 << 20  # mappings this large or larger (glibc's own mmap threshold is far below)
MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25
MAPS = "/proc/self/maps"
_collapsing: list[threading.Thread] = []  # collapses under way (a fork waits for them)


def anonymous_mappings(maps_text: str) -> set[tuple[int, int]]:
    """The (start, end) addresses of the private anonymous mappings in a /proc/<pid>/maps text."""
    found = set()
    for line in maps_text.splitlines():
        fields = line.split()
        if len(fields) == 5 and fields[1].startswith("rw"):  # no path: anonymous
            start, end = (int(x, 16) for x in fields[0].split("-"))
            found.add((start, end))
    return found


def huge_page_span(start: int, end: int) -> tuple[int, int] | None:
    """The whole huge pages inside [start, end), or None when there is none."""
    first = (start + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1)
    last = end & ~(HUGE_PAGE - 1)
    return (first, last) if last > first else None


def _read_maps() -> str | None:
    try:
        with open(MAPS, encoding="ascii") as f:
            return f.read()
    except OSError:
        return None


@contextmanager
def huge_pages_for_new_memory() -> Iterator[None]:
    """Advise huge pages for the large anonymous mappings made inside the block (see the module)."""
    before = _read_maps() if sys.platform == "linux" else None
    yield
    if before is None:
        return
    after = _read_maps()
    if after is None:
        return
    new = anonymous_mappings(after) - anonymous_mappings(before)
    spans = [s for a, b in new if b - a >= MIN_BYTES and (s := huge_page_span(a, b))]
    if spans:
        advised = _advise(spans)
        log.debug("huge pages advised for %d of %d new mappings", advised, len(spans))


def _advise(spans: list[tuple[int, int]]) -> int:
    """Mark the spans for huge pages now; collapse them on a daemon thread (ctypes lets go of the GIL)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        madvise = libc.madvise
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    advised = [(first, last) for first, last in spans if madvise(first, last - first, MADV_HUGEPAGE) == 0]
    if advised:
        thread = threading.Thread(
            target=_collapse, args=(madvise, advised), name="huge-page-collapse", daemon=True
        )
        _collapsing.append(thread)
        thread.start()
    return len(advised)


def finish_collapsing() -> None:
    """Wait for the background collapses started so far (before a fork; see the module)."""
    while _collapsing:
        _collapsing.pop().join()


def _collapse(madvise: Any, spans: list[tuple[int, int]]) -> None:
    for first, last in spans:
        madvise(first, last - first, MADV_COLLAPSE)  # best effort: EINVAL before Linux 6.1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=finish_collapsing)
