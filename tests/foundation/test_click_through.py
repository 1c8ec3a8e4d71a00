"""Click-through intervals and the canary comparison (`recsys.click_through`), against published values."""

from __future__ import annotations

import pytest

from recsys.click_through import Rate, compare, confident_drop, difference_interval, wilson_interval


def test_wilson_interval_matches_newcombes_worked_examples() -> None:
    # Newcombe (1998), Statistics in Medicine 17: 857-872, table I and table II.
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)  # no impressions: nothing is known


def test_difference_interval_matches_newcombes_method_10() -> None:
    assert difference_interval(Rate(56, 70), Rate(48, 80)) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    assert difference_interval(Rate(9, 10), Rate(3, 10)) == pytest.approx((0.1705, 0.8090), abs=1e-4)


def test_a_rate_describes_itself_and_refuses_impossible_counts() -> None:
    assert Rate(82, 2000).describe() == "4.10% (95% CI 3.3-5.1%, 82/2000)"
    assert Rate(0, 0).value == 0.0
    with pytest.raises(ValueError):
        Rate(5, 3)


def test_compare_says_worse_only_with_confidence_and_waits_for_traffic() -> None:
    production = Rate(100, 1000)  # 10%
    assert compare(Rate(50, 1000), production, min_impressions=500) == "worse"
    assert compare(Rate(100, 1000), production, min_impressions=500) == "no_worse"
    assert compare(Rate(90, 1000), production, min_impressions=500) == "no_worse"  # within the noise
    assert compare(Rate(150, 1000), production, min_impressions=500) == "no_worse"
    assert compare(Rate(0, 100), production, min_impressions=500) == "too_little_traffic"
    assert compare(Rate(50, 1000), Rate(10, 100), min_impressions=500) == "too_little_traffic"


def test_confident_drop_needs_the_whole_interval_below_the_allowed_share() -> None:
    previous = Rate(200, 2000)  # 10%, CI about 8.8-11.4%
    assert confident_drop(Rate(40, 2000), previous, min_ratio=0.5)  # 2%: far below half
    assert not confident_drop(Rate(90, 2000), previous, min_ratio=0.5)  # 4.5%: CI reaches past 4.4%
    assert not confident_drop(Rate(2, 20), previous, min_ratio=0.5)  # too few to be sure
