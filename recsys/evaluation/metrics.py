"""Ranking metrics, one function per metric with an explicit k. Binary relevance throughout.

Retrieval metrics take a hit matrix: `hits[u, r]` is True when the item at rank r (0-based) of user u's
recommendations is one of u's held-out items; `n_relevant[u]` is how many held-out items u has.
Every metric is the mean over users with at least one held-out item.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recsys.ranking.row_sets import run_starts


def hit_matrix(recommended: np.ndarray, relevant: Sequence[np.ndarray]) -> np.ndarray:
    """hits [n_users, K] from recommended item indices [n_users, K] and each user's relevant indices."""
    recommended = np.asarray(recommended)
    n_users = recommended.shape[0]
    lengths = np.fromiter((len(r) for r in relevant), np.int64, n_users)
    if not n_users or not lengths.sum():
        return np.zeros(recommended.shape, dtype=bool)
    rel = np.concatenate([np.asarray(r, dtype=np.int64).reshape(-1) for r in relevant])
    rec = recommended.astype(np.int64)
    # (user, item) pairs as one integer each, so membership is one isin for every user at once.
    lo = min(int(rel.min()), int(rec.min()))
    width = max(int(rel.max()), int(rec.max())) - lo + 1
    wanted = np.repeat(np.arange(n_users, dtype=np.int64), lengths) * width + (rel - lo)
    asked = np.arange(n_users, dtype=np.int64)[:, None] * width + (rec - lo)
    return np.isin(asked, wanted)


def _check(hits: np.ndarray, k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if hits.ndim != 2 or hits.shape[1] < k:
        raise ValueError(f"hit matrix of shape {hits.shape} has fewer than k={k} ranks")


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> float:
    """Recall@k, 0..1: held-out items found in the top k / held-out items (mean over users)."""
    _check(hits, k)
    n_rel = np.asarray(n_relevant, dtype=np.float64)
    mask = n_rel > 0
    if not mask.any():
        return 0.0
    return float(np.mean(hits[mask, :k].sum(axis=1) / n_rel[mask]))


def precision_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> float:
    """Precision@k, 0..1: held-out items in the top k / k (mean over users)."""
    _check(hits, k)
    mask = np.asarray(n_relevant) > 0
    return float(np.mean(hits[mask, :k].sum(axis=1) / k)) if mask.any() else 0.0


def hit_rate_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> float:
    """HitRate@k, 0..1: share of users with at least one held-out item in the top k."""
    _check(hits, k)
    mask = np.asarray(n_relevant) > 0
    return float(np.mean(hits[mask, :k].any(axis=1))) if mask.any() else 0.0


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> float:
    """nDCG@k, 0..1: DCG = sum over hits of 1/log2(rank + 2) (rank 0-based), divided by the ideal DCG
    of min(n_relevant, k) hits at the top (mean over users)."""
    _check(hits, k)
    n_rel = np.asarray(n_relevant)
    mask = n_rel > 0
    if not mask.any():
        return 0.0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits[mask, :k] * discounts).sum(axis=1)
    ideal_cum = np.cumsum(discounts)
    idcg = ideal_cum[np.minimum(n_rel[mask], k) - 1]
    return float(np.mean(dcg / idcg))


def mrr_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> float:
    """MRR@k, 0..1: 1 / (1 + rank of the first hit in the top k), 0 without a hit."""
    _check(hits, k)
    mask = np.asarray(n_relevant) > 0
    if not mask.any():
        return 0.0
    h = hits[mask, :k]
    first = np.where(h.any(axis=1), h.argmax(axis=1) + 1, np.inf)
    return float(np.mean(1.0 / first))


def catalog_coverage(recommended: np.ndarray, k: int, n_items: int) -> float:
    """Catalogue coverage@k, 0..1: distinct items in anyone's top k / catalogue size."""
    if n_items <= 0:
        return 0.0
    return float(np.unique(np.asarray(recommended)[:, :k]).size / n_items)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC, 0..1 (0.5 = random), by the Mann-Whitney rank statistic with average ranks for ties."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size, dtype=np.float64)
    sorted_scores = scores[order]
    # Average ranks (1-based) over tied scores.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [scores.size]])
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def grouped_ndcg(groups: np.ndarray, labels: np.ndarray, scores: np.ndarray, k: int | None = None) -> float:
    """Mean nDCG@k (k=None: the whole list) of each group's items ordered by score, over groups with a
    positive. Ties are broken pessimistically (positives after negatives of equal score)."""
    groups = np.asarray(groups)
    labels = np.asarray(labels).astype(np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.lexsort((labels, -scores, groups))  # by group, score desc, then label asc on ties
    g, lab = groups[order], labels[order]
    if not g.size:
        return 0.0
    starts = np.flatnonzero(run_starts(g))
    sizes = np.diff(np.r_[starts, g.size])
    position = np.arange(g.size) - np.repeat(starts, sizes)  # rank within the group, 0-based
    depth = sizes if k is None else np.minimum(k, sizes)
    gain = np.where(position < np.repeat(depth, sizes), lab / np.log2(position + 2.0), 0.0)
    dcg = np.add.reduceat(gain, starts)
    n_pos = np.add.reduceat(lab, starts)
    ideal = np.r_[0.0, np.cumsum(1.0 / np.log2(np.arange(2, int(sizes.max()) + 2)))]
    idcg = ideal[np.minimum(n_pos, depth).astype(np.int64)]
    scored = n_pos > 0
    return float(np.mean(dcg[scored] / idcg[scored])) if scored.any() else 0.0


def map_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> float:
    """MAP@k: mean over users of (sum of precision@r at each hit r <= k) / min(held-out items, k)."""
    _check(hits, k)
    n_rel = np.asarray(n_relevant, dtype=np.float64)
    mask = n_rel > 0
    if not mask.any():
        return 0.0
    h = hits[mask, :k].astype(np.float64)
    precision = np.cumsum(h, axis=1) / np.arange(1, k + 1)
    return float(np.mean((precision * h).sum(axis=1) / np.minimum(n_rel[mask], k)))
