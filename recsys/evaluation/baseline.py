"""The popularity baseline: every user gets the most popular videos they have not seen (train counts)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recsys.evaluation.topk import popularity_retrieve


def popularity_recommendations(popularity: np.ndarray, exclude: Sequence[np.ndarray], k: int) -> np.ndarray:
    """[n_users, k] item indices of the popularity baseline, seen items excluded."""
    return popularity_retrieve(np.asarray(popularity, dtype=np.float64), exclude, k)


def popularity_scores(popularity: np.ndarray, item_index: np.ndarray) -> np.ndarray:
    """The baseline's score of each candidate (for ranking candidate lists)."""
    return np.asarray(popularity, dtype=np.float64)[item_index]
