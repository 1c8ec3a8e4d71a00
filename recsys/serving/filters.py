"""Business rules after ranking: watched items out, category filter, diversity, fill-up from popular.

All functions take catalogue rows (ints) and return rows; they never drop below k while the catalogue
has eligible items: the diversity cap is relaxed last, after popular items have been tried.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_MAX_CATEGORY_SHARE = 0.5


def max_per_category(k: int, share: float = DEFAULT_MAX_CATEGORY_SHARE) -> int:
    """The diversity cap: at most `ceil(k * share)` items of one category in the top k (at least 1)."""
    return max(1, math.ceil(k * share))


@dataclass
class Pick:
    """A chosen item: catalogue row, score and why it was chosen (`model`, `popular`, `trending`)."""

    row: int
    score: float
    origin: str


def apply_rules(
    ranked_rows: Sequence[int],
    ranked_scores: Sequence[float],
    categories: np.ndarray,
    k: int,
    excluded: set[int],
    fill_rows: Iterable[int],
    fill_scores: np.ndarray,
    fill_origin: str = "popular",
    category: str | None = None,
    cap: int | None = None,
) -> list[Pick]:
    """Pick k items: ranked candidates under the diversity cap, then `fill_rows` (popularity order), then the cap relaxed.

    `excluded` rows never appear; with `category` only that category does. `fill_scores[row]` is the
    score shown for a fill-up item.
    """
    cap = cap if cap is not None else max_per_category(k)
    picks: list[Pick] = []
    taken: set[int] = set()
    counts: dict[str, int] = {}
    overflow: list[Pick] = []

    def consider(row: int, score: float, origin: str) -> None:
        if row in taken or row in excluded:
            return
        cat = str(categories[row])
        if category is not None and cat != category:
            return
        taken.add(row)
        if counts.get(cat, 0) >= cap:
            overflow.append(Pick(row, score, origin))
            return
        counts[cat] = counts.get(cat, 0) + 1
        picks.append(Pick(row, score, origin))

    for row, score in zip(ranked_rows, ranked_scores, strict=True):
        if len(picks) >= k:
            break
        consider(int(row), float(score), "model")
    if len(picks) < k:
        for row in fill_rows:
            if len(picks) >= k:
                break
            consider(int(row), float(fill_scores[row]), fill_origin)
    if len(picks) < k:  # the catalogue cannot satisfy the cap: relax it rather than return fewer
        picks.extend(overflow[: k - len(picks)])
    return picks[:k]
