"""Membership of catalogue rows in a small set of rows (a user's exclusions, a short list).

`np.isin` on integers builds a lookup table spanning the values' range: for rows of a 100,000-video
catalogue that is a 100 KB table per call, tens of microseconds on the request path for a set of 20 rows.
A few values are looked up by binary search in the sorted set; many values (thousands of neighbour-list
entries) by one bool per catalogue row. Both give `np.isin`'s answer.

The other helpers here serve the same arrays: `sorted_unique` (`np.unique` of a few hundred rows), `run_starts`
(where each run of equal values begins in a sorted array) and `expand_ranges` (the positions of several
ranges of a CSR table, one after the other).
"""

from __future__ import annotations

import numpy as np

DENSE_FROM_VALUES = 1_000  # from this many values, with the rows' range given, one bool per row


def run_starts(values: np.ndarray) -> np.ndarray:
    """A bool per position of `values` (sorted, or grouped): True where a run of equal values begins."""
    starts = np.empty(values.shape[0], dtype=bool)
    if starts.size:
        starts[0] = True
        np.not_equal(values[1:], values[:-1], out=starts[1:])
    return starts


def expand_ranges(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The positions of the ranges [starts[i], starts[i] + lengths[i]), one range after the other, and each
    position's range index i, without a Python loop (numpy's methods: its functions add a Python-level
    dispatch to every call)."""
    owner = np.arange(lengths.shape[0]).repeat(lengths)
    positions = np.arange(owner.shape[0]) + (starts - (lengths.cumsum() - lengths)).repeat(lengths)
    return owner, positions


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """`np.unique(values)` of an integer array (ascending, each value once), without its layers of Python."""
    out = np.array(values, dtype=np.int64).ravel()  # a copy: sorted in place
    out.sort()
    return out[run_starts(out)]


def member_of(values: np.ndarray, pool: np.ndarray, n_rows: int | None = None) -> np.ndarray:
    """A bool per value: True where it is in `pool` (`np.isin(values, pool)`, for a small `pool`).

    `n_rows`: every value and pool member is a row in [0, n_rows) (then many values use a dense mask)."""
    values = np.asarray(values)
    pool = np.asarray(pool).ravel()
    if not pool.size or not values.size:
        return np.zeros(values.shape, dtype=bool)
    if n_rows is not None and values.size >= DENSE_FROM_VALUES:
        mask = np.zeros(n_rows, dtype=bool)
        mask[pool] = True
        return mask[values]
    pool = pool.copy()
    pool.sort()
    pos = pool.searchsorted(values)
    pos[pos == pool.size] = 0
    return pool[pos] == values
