"""BLAS threads of a serving process: one per request is fastest.

A request's products are small (one query against the catalogue, 20 picks against 20 anchors); OpenBLAS
spreads even those over every core and spins its threads while it waits, which on a busy 2-core host
made one 20k-video product take 19 ms instead of 1 ms (bench/results/serving.md). Serving processes run
requests side by side instead, each on one BLAS thread.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_applied: int | None = None


def limit_blas_threads(threads: int) -> None:
    """Use at most `threads` BLAS threads in this process from now on (0: leave the library's choice)."""
    global _applied
    if threads <= 0 or _applied == threads:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # an older package without it: correct, only slower under load
        log.warning("threadpoolctl is not installed; BLAS keeps its own thread count")
        return
    threadpool_limits(limits=threads, user_api="blas")
    _applied = threads
