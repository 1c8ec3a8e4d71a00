"""Offline top-k for evaluation: every user against the whole catalogue, seen items excluded (chunked numpy).

Used by `recsys.evaluation.offline` and `baseline`; serving's online retrieval index is `recsys.serving.retrieval`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores per row, best first."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    rows = np.arange(scores.shape[0])[:, None]
    return part[rows, np.argsort(-scores[rows, part], axis=1, kind="stable")]


def retrieve(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    exclude: Sequence[np.ndarray],
    k: int,
    item_bias: np.ndarray | None = None,
    chunk: int = 1024,
) -> np.ndarray:
    """Top-k item indices [n_users, k] by dot product (+ optional per-item bias), seen items excluded."""
    out = np.zeros((user_vectors.shape[0], min(k, item_vectors.shape[0])), dtype=np.int64)
    for lo in range(0, user_vectors.shape[0], chunk):
        hi = min(lo + chunk, user_vectors.shape[0])
        scores = user_vectors[lo:hi] @ item_vectors.T
        if item_bias is not None:
            scores = scores + item_bias[None, :]
        for j, u in enumerate(range(lo, hi)):
            if len(exclude[u]):
                scores[j, exclude[u]] = -np.inf
        out[lo:hi] = top_k(scores, k)
    return out


def popularity_retrieve(popularity: np.ndarray, exclude: Sequence[np.ndarray], k: int) -> np.ndarray:
    """The popularity baseline: the k most popular unseen items for every user (seen items last, when a
    user has seen nearly the whole catalogue)."""
    n = len(exclude)
    return retrieve(np.zeros((n, 1)), np.zeros((popularity.size, 1)), exclude, k, item_bias=popularity)
