"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.evaluation import metrics as m


def test_recall_and_ndcg_by_hand():
    # User 0: relevant {1, 5}; ranks 0..3 = [1, 2, 5, 7] -> hits at ranks 0 and 2.
    # User 1: relevant {9}; ranks = [3, 4, 6, 9] -> hit at rank 3.
    recs = np.array([[1, 2, 5, 7], [3, 4, 6, 9]])
    rel = [np.array([1, 5]), np.array([9])]
    hits = m.hit_matrix(recs, rel)
    n = np.array([2, 1])
    assert hits.tolist() == [[True, False, True, False], [False, False, False, True]]
    assert m.recall_at_k(hits, n, 1) == pytest.approx((0.5 + 0.0) / 2)
    assert m.recall_at_k(hits, n, 4) == pytest.approx((1.0 + 1.0) / 2)
    assert m.precision_at_k(hits, n, 2) == pytest.approx((0.5 + 0.0) / 2)
    assert m.hit_rate_at_k(hits, n, 3) == pytest.approx(0.5)
    assert m.mrr_at_k(hits, n, 4) == pytest.approx((1.0 + 0.25) / 2)
    dcg0 = 1 / math.log2(2) + 1 / math.log2(4)
    idcg0 = 1 / math.log2(2) + 1 / math.log2(3)
    ndcg1 = (1 / math.log2(5)) / 1.0
    assert m.ndcg_at_k(hits, n, 4) == pytest.approx((dcg0 / idcg0 + ndcg1) / 2)
    # @2: user 0 has one hit at rank 0 (ideal 2 hits), user 1 none.
    assert m.ndcg_at_k(hits, n, 2) == pytest.approx((1.0 / idcg0 + 0.0) / 2)


def test_users_without_held_out_items_are_skipped():
    hits = np.array([[True, False], [False, False]])
    assert m.recall_at_k(hits, np.array([1, 0]), 2) == 1.0
    assert m.ndcg_at_k(hits, np.array([0, 0]), 2) == 0.0


def test_k_larger_than_ranks_is_an_error():
    with pytest.raises(ValueError, match="fewer than k"):
        m.recall_at_k(np.zeros((1, 3), dtype=bool), np.array([1]), 10)


def test_coverage():
    recs = np.array([[0, 1, 2], [0, 1, 3]])
    assert m.catalog_coverage(recs, 2, 10) == pytest.approx(0.2)
    assert m.catalog_coverage(recs, 3, 10) == pytest.approx(0.4)


def test_auc_by_hand_with_ties():
    labels = np.array([1, 0, 1, 0, 0])
    scores = np.array([0.9, 0.8, 0.5, 0.5, 0.1])
    # Pairs (pos, neg): 0.9 beats all 3; 0.5 beats 0.1, ties 0.5 (0.5), loses to 0.8 -> (3 + 1.5) / 6.
    assert m.auc(labels, scores) == pytest.approx(4.5 / 6)
    assert m.auc(np.array([1, 1]), np.array([0.1, 0.2])) != m.auc(
        np.array([1, 1]), np.array([0.1, 0.2])
    )  # NaN


def test_grouped_ndcg_by_hand():
    groups = np.array([0, 0, 0, 1, 1])
    labels = np.array([0, 1, 0, 1, 0])
    scores = np.array([3.0, 2.0, 1.0, 5.0, 4.0])
    # Group 0: positive at rank 1 -> 1/log2(3); group 1: at rank 0 -> 1.
    assert m.grouped_ndcg(groups, labels, scores) == pytest.approx((1 / math.log2(3) + 1.0) / 2)
    assert m.grouped_ndcg(groups, labels, scores, k=1) == pytest.approx(0.5)
    # Ties are pessimistic: a tied negative is ranked first.
    assert m.grouped_ndcg(np.array([0, 0]), np.array([1, 0]), np.array([1.0, 1.0])) == pytest.approx(
        1 / math.log2(3)
    )


def _ndcg_loop(groups, labels, scores, k=None):
    """The per-group definition, one group at a time (the oracle of the vectorised grouped_ndcg)."""
    values = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        order = np.lexsort((labels[idx], -scores[idx]))
        rel = labels[idx][order].astype(float)
        if rel.sum() == 0:
            continue
        kk = rel.size if k is None else min(k, rel.size)
        disc = 1.0 / np.log2(np.arange(2, kk + 2))
        values.append((rel[:kk] * disc).sum() / disc[: int(min(rel.sum(), kk))].sum())
    return float(np.mean(values)) if values else 0.0


def test_grouped_ndcg_and_hits_equal_their_per_user_definitions():
    from recsys.evaluation.metrics import grouped_ndcg, hit_matrix

    rng = np.random.default_rng(11)
    groups = rng.integers(0, 40, 600)
    labels = (rng.random(600) < 0.15).astype(np.int8)
    scores = rng.integers(0, 5, 600).astype(float)  # many ties: positives go after negatives
    for k in (None, 1, 10):
        assert grouped_ndcg(groups, labels, scores, k) == pytest.approx(_ndcg_loop(groups, labels, scores, k))
    assert grouped_ndcg(groups, np.zeros(600), scores) == 0.0
    recommended = np.where(rng.random((30, 8)) < 0.1, -1, rng.integers(0, 50, (30, 8)))  # -1: padding
    relevant = [rng.choice(50, rng.integers(0, 6), replace=False) for _ in range(30)]
    expected = np.array([np.isin(r, rel) for r, rel in zip(recommended, relevant, strict=True)])
    assert (hit_matrix(recommended, relevant) == expected).all()
    assert not hit_matrix(recommended, [np.zeros(0, np.int64)] * 30).any()
