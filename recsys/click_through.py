"""Click-through as a proportion with its uncertainty: the statistics behind the canary comparison.

Pure functions over counts (impressions shown, engagements among them), used by the feedback report, the
promote check (`recsys.release`) and the release guard:

- `wilson_interval`: the Wilson score interval of one click-through rate (good at small counts and rates
  near 0, where the normal approximation gives negative bounds);
- `difference_interval`: Newcombe's interval for the difference of two independent rates, built from their
  Wilson intervals (method 10 of Newcombe, Statistics in Medicine 1998);
- `compare`: whether a candidate's rate is worse than a baseline's with confidence, or there is too little
  traffic to tell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Z_95 = 1.959963984540054  # two-sided 95%

Verdict = Literal["worse", "no_worse", "too_little_traffic"]


@dataclass(frozen=True)
class Rate:
    """Engagements among impressions (click-through), with its 95% Wilson interval."""

    engaged: int
    impressions: int

    def __post_init__(self) -> None:
        if self.impressions < 0 or not 0 <= self.engaged <= max(self.impressions, 0):
            raise ValueError(f"need 0 <= engaged <= impressions, got {self.engaged}/{self.impressions}")

    @property
    def value(self) -> float:
        """The observed click-through, 0..1 (0 without impressions)."""
        return self.engaged / self.impressions if self.impressions else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        """The 95% Wilson interval, 0..1 each."""
        return wilson_interval(self.engaged, self.impressions)

    def describe(self) -> str:
        """E.g. `4.10% (95% CI 3.3-5.0%, 82/2000)`."""
        low, high = self.interval
        return (
            f"{self.value:.2%} (95% CI {low * 100:.1f}-{high * 100:.1f}%, {self.engaged}/{self.impressions})"
        )


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of `successes` in `trials` (0..1 each; (0, 1) without trials)."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(a: Rate, b: Rate) -> tuple[float, float]:
    """The 95% interval of `a.value - b.value` (Newcombe's hybrid score interval), -1..1 each."""
    (la, ua), (lb, ub) = a.interval, b.interval
    d = a.value - b.value
    return (
        d - math.sqrt((a.value - la) ** 2 + (ub - b.value) ** 2),
        d + math.sqrt((ua - a.value) ** 2 + (b.value - lb) ** 2),
    )


def compare(candidate: Rate, baseline: Rate, min_impressions: int) -> Verdict:
    """`worse` when the candidate's click-through is below the baseline's with 95% confidence (the upper end
    of their difference's interval is below 0); `too_little_traffic` when either has fewer than
    `min_impressions`; else `no_worse`."""
    if min(candidate.impressions, baseline.impressions) < max(min_impressions, 1):
        return "too_little_traffic"
    return "worse" if difference_interval(candidate, baseline)[1] < 0 else "no_worse"


def confident_drop(new: Rate, previous: Rate, min_ratio: float) -> bool:
    """True when `new` is below `min_ratio` x `previous` with confidence: the upper end of new's interval is
    below `min_ratio` times the lower end of previous's (the release guard's click-through rule)."""
    return new.interval[1] < min_ratio * previous.interval[0]
