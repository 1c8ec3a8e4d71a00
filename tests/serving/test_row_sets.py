"""`member_of` answers as `np.isin` does, for the row sets the request path tests against."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.ranking.row_sets import DENSE_FROM_VALUES, expand_ranges, member_of, run_starts, sorted_unique


@pytest.mark.parametrize("seed", range(5))
def test_member_of_equals_isin(seed):
    rng = np.random.default_rng(seed)
    cases = [(128, 25, 100_000), (DENSE_FROM_VALUES * 5, 10, 1_000), (7, 0, 10), (0, 5, 10), (50, 50, 20)]
    for n_values, n_pool, n_rows in cases:
        values = rng.integers(0, n_rows, n_values)
        pool = rng.integers(0, n_rows, n_pool)  # unsorted, with repeats
        expected = np.isin(values, pool).tolist()
        assert member_of(values, pool).tolist() == expected  # binary search
        assert member_of(values, pool, n_rows).tolist() == expected  # dense mask for many values
    # values above and below every pool value, the pool's own ends, another integer type
    values = np.array([-1, 0, 3, 9, 10, 11], dtype=np.int64)
    assert member_of(values, np.array([9, 0, 3], dtype=np.int32)).tolist() == [
        False,
        True,
        True,
        True,
        False,
        False,
    ]


@pytest.mark.parametrize("size", [0, 1, 2, 7, 500])
def test_sorted_unique_equals_unique_and_leaves_its_input_alone(size):
    rng = np.random.default_rng(size)
    values = rng.integers(-5, 40, size).astype(np.int32)
    before = values.copy()
    got = sorted_unique(values)
    assert got.tolist() == np.unique(values).tolist()
    assert got.dtype == np.int64
    assert values.tolist() == before.tolist()


def test_run_starts_marks_where_each_run_of_equal_values_begins():
    assert run_starts(np.array([3, 3, 5, 7, 7, 7, 2])).tolist() == [
        True,
        False,
        True,
        True,
        False,
        False,
        True,
    ]
    assert run_starts(np.array(["u1", "u1", "u2"], dtype=object)).tolist() == [True, False, True]
    assert run_starts(np.zeros(0, np.int64)).tolist() == []


def test_expand_ranges_lists_each_range_in_turn_with_its_index():
    owner, positions = expand_ranges(np.array([10, 0, 4]), np.array([2, 0, 3]))
    assert positions.tolist() == [10, 11, 4, 5, 6]
    assert owner.tolist() == [0, 0, 2, 2, 2]
    owner, positions = expand_ranges(np.zeros(2, np.int64), np.zeros(2, np.int64))
    assert owner.size == positions.size == 0
