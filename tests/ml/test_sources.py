"""Candidate sources: the item-item fits, the neighbour table, the candidate features, windows and gates."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from recsys.data.windows import label_window
from recsys.evaluation.gates import check_gates
from recsys.evaluation.metrics import map_at_k
from recsys.pipeline_config import GatesConfig, PipelineConfig, SourcesConfig
from recsys.ranking.candidates import (
    CANDIDATE_FEATURES,
    Catalogue,
    NeighbourTable,
    SourceSettings,
    UserState,
    user_candidates,
)
from recsys.sources.fit import fit_sources
from recsys.sources.item_item import fit_ease, fit_item_knn


def _table_dense(t: NeighbourTable) -> np.ndarray:
    out = np.zeros((t.n, t.n))
    for i in range(t.n):
        lo, hi = t.offsets[i], t.offsets[i + 1]
        out[i, t.neighbours[lo:hi]] = t.weights[lo:hi]
    return out


def _random_matrix(seed: int = 0, users: int = 60, items: int = 25) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((users, items)) < 0.2).astype(np.float64)
    return sp.csr_matrix(dense)


def test_ease_table_is_the_closed_form_when_every_neighbour_is_kept():
    x = _random_matrix()
    n = x.shape[1]
    cfg = SourcesConfig(ease_lambda=5.0, neighbours=n)
    table = fit_ease(x, np.arange(n), n, cfg)
    gram = (x.T @ x).toarray() + 5.0 * np.eye(n)
    p = np.linalg.inv(gram)
    b = p / -np.diag(p)
    np.fill_diagonal(b, 0.0)
    np.testing.assert_allclose(_table_dense(table), b, atol=1e-4)


def test_ease_keeps_its_largest_weights_overall_within_bounds_per_video():
    x = _random_matrix(1, items=40)
    n = x.shape[1]
    full = _table_dense(fit_ease(x, np.arange(n), n, SourcesConfig(ease_lambda=5.0, neighbours=n)))
    k = 4
    top = fit_ease(x, np.arange(n), n, SourcesConfig(ease_lambda=5.0, neighbours=k))
    per_row = np.diff(top.offsets)
    assert abs(per_row.sum() - n * k) <= n // 10  # the budget: `neighbours` per video on average
    assert per_row.min() >= 1 and per_row.max() <= 3 * k and per_row.max() > k  # it moves between rows
    kept = _table_dense(top) != 0
    free = (per_row > 1) & (per_row < 3 * k)  # rows that neither floor nor cap held
    weights = np.abs(full)
    np.fill_diagonal(weights, np.nan)
    assert np.nanmin(np.where(kept[free], weights[free], np.nan)) >= np.nanmax(
        np.where(~kept[free], weights[free], np.nan)
    )
    np.testing.assert_allclose(_table_dense(top)[kept], full[kept], atol=1e-5)


def test_item_knn_is_shrunk_cosine_of_the_item_columns():
    # users x items: item 0 and 1 always together, item 2 with item 0 once
    x = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [0, 0, 1], [1, 1, 0]], dtype=np.float64))
    table = fit_item_knn(x, 3, SourcesConfig(knn_shrink=1.0, neighbours=5))
    dense = _table_dense(table)
    assert dense[0, 1] == pytest.approx(3 / (np.sqrt(3 * 3) + 1.0))
    assert dense[0, 2] == pytest.approx(1 / (np.sqrt(3 * 2) + 1.0))
    assert dense[0, 0] == 0.0 and np.allclose(dense, dense.T)


def test_neighbour_scores_are_the_weighted_sum_of_the_history_rows():
    x = _random_matrix(2)
    n = x.shape[1]
    table = fit_item_knn(x, n, SourcesConfig(neighbours=4))
    hist = np.array([3, 7, 11])
    w = np.array([1.0, 0.5, 0.25])
    np.testing.assert_allclose(table.scores(hist, w), w @ _table_dense(table)[hist], atol=1e-6)
    assert table.scores(np.zeros(0, np.int64)).sum() == 0.0


def test_nearest_anchor_is_the_one_with_the_largest_positive_weight_first_on_ties():
    x = _random_matrix(5)
    table = fit_ease(x, np.arange(x.shape[1]), x.shape[1], SourcesConfig(neighbours=6))
    dense = _table_dense(table)
    rng = np.random.default_rng(6)
    for _ in range(20):
        anchors = rng.choice(table.n, 8, replace=False)
        rows = rng.choice(table.n, 10, replace=False)
        got = table.nearest(anchors, rows)
        for r, g in zip(rows.tolist(), got.tolist(), strict=True):
            w = dense[anchors, r]
            expected = int(anchors[int(np.argmax(w))]) if w.max() > 0 else -1  # argmax: the first maximum
            assert g == expected
    tied = NeighbourTable(
        np.array([0, 1, 2, 2]), np.array([2, 2], np.int32), np.array([0.5, 0.5], np.float32)
    )
    assert table.nearest(np.zeros(0, np.int64), np.array([1])).tolist() == [-1]
    assert tied.nearest(np.array([1, 0]), np.array([2, 0])).tolist() == [1, -1]


@pytest.mark.parametrize("seed", range(30))
def test_the_candidate_steps_hits_name_the_same_anchor_as_the_neighbour_lists(seed):
    # reasons use the entries the candidate step read (NeighbourHits) instead of reading the lists again:
    # the same anchor for every row, with ties, repeated history rows, weights <= 0 and a history cut
    rng = np.random.default_rng(400 + seed)
    n, per_row = int(rng.integers(5, 60)), int(rng.integers(1, 8))
    offsets = np.arange(0, n * per_row + 1, per_row)
    neighbours = rng.integers(0, n, n * per_row).astype(np.int32)
    weights = rng.choice([-0.5, 0.0, 0.25, 0.5, 1.0], n * per_row).astype(np.float32)  # ties are common
    table = NeighbourTable(offsets, neighbours, weights)
    history = rng.integers(0, n, int(rng.integers(0, 30)))  # oldest first, repeats allowed
    _, hits = table.score_sets_and_hits(history, [None])
    rows = rng.choice(n, min(n, int(rng.integers(0, 15))), replace=False)
    first = int(rng.integers(0, history.size + 1))
    expected = table.nearest(history[first:][::-1], rows)
    at = hits.nearest(rows, first_owner=first)
    assert (
        np.where(at >= 0, history[np.maximum(at, 0)] if history.size else -1, -1).tolist()
        == expected.tolist()
    )
    assert (at[at >= 0] >= first).all()


def _catalogue(table: NeighbourTable) -> Catalogue:
    n = table.n
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(n, 4)).astype(np.float32)
    return Catalogue(
        video_embeddings=emb / np.linalg.norm(emb, axis=1, keepdims=True),
        popularity=np.linspace(1.0, 0.0, n),
        trending=np.linspace(0.0, 1.0, n),
        category=np.array(["a", "b"] * (n // 2) + ["a"] * (n % 2)),
        upload_ts=np.zeros(n, dtype=np.int64),
        neighbours=table,
    )


def test_candidates_exclude_the_history_and_carry_every_sources_features():
    x = _random_matrix(4)
    n = x.shape[1]
    cat = _catalogue(fit_item_knn(x, n, SourcesConfig(neighbours=5)))
    hist = np.array([0, 5, 9])
    user = UserState(hist, cat.video_embeddings[2], None, last_ts=0.0)
    cfg = SourceSettings(per_source=4, recent_events=2)
    cands = user_candidates(cat, user, cfg, now_ts=86_400.0 * 2)
    assert not set(cands.rows.tolist()) & set(hist.tolist())
    assert cands.features.shape == (len(cands.rows), len(CANDIDATE_FEATURES))
    f = dict(zip(CANDIDATE_FEATURES, cands.features.T, strict=True))
    # the two-tower's best unseen video is video 2 (the user vector is its embedding): rank 0
    assert cands.features[list(cands.rows).index(2), CANDIDATE_FEATURES.index("two_tower_rank")] == 0
    assert np.all(f["popularity_rank"][np.isin(cands.rows, [1, 2, 3, 4])] < 4)
    assert set(np.unique(f["user_days_since_last"])) == {2.0}
    assert np.all(f["n_sources"] >= 1)
    assert set(cands.source) <= {"two_tower", "item_item", "recent", "popularity"}
    # category affinity: 2 of the 3 history videos are category "a" (rows 0 and 9 are even/odd...)
    share_a = float(np.mean(cat.category[hist] == "a"))
    assert np.allclose(f["category_affinity"][cat.category[cands.rows] == "a"], share_a)


def test_item_item_and_recent_scores_are_the_weighted_sums_of_the_history_and_its_last_events():
    x = _random_matrix(7, items=30)
    n = x.shape[1]
    table = fit_ease(x, np.arange(n), n, SourcesConfig(neighbours=6))  # EASE: negative weights too
    dense = _table_dense(table)
    cat = _catalogue(table)
    hist = np.array([4, 8, 15, 16, 23, 8])  # oldest first, one video twice
    cfg = SourceSettings(per_source=6, recent_events=3, recent_decay=0.5)
    cands = user_candidates(cat, UserState(hist), cfg, now_ts=0.0)
    f = dict(zip(CANDIDATE_FEATURES, cands.features.T, strict=True))
    recent = hist[::-1][:3]  # newest first: 0.5 ** position
    expected_recent = (0.5 ** np.arange(3)) @ dense[recent]
    np.testing.assert_allclose(f["item_item_score"], dense[hist].sum(axis=0)[cands.rows], atol=1e-6)
    np.testing.assert_allclose(f["recent_score"], expected_recent[cands.rows], atol=1e-6)
    from_recent = cands.rows[f["recent_rank"] < cfg.per_source]
    assert from_recent.size and np.all(expected_recent[from_recent] > 0)  # only rows it reaches positively
    eligible = np.setdiff1d(np.flatnonzero(expected_recent > 0), hist)
    best = eligible[np.argsort(-expected_recent[eligible], kind="stable")][: cfg.per_source]
    assert set(from_recent.tolist()) == set(best.tolist())
    # the neighbour entries are kept only when asked (serving's reasons), not in the thousands of candidate
    # sets that training and evaluation hold
    assert cands.hits is None
    kept = user_candidates(cat, UserState(hist), cfg, now_ts=0.0, keep_hits=True)
    assert (
        kept.hits is not None and kept.hits.rows.tolist() == np.flatnonzero(dense[hist].any(axis=0)).tolist()
    )
    np.testing.assert_array_equal(kept.features, cands.features)


def test_a_user_without_history_or_vector_gets_popular_candidates_only():
    x = _random_matrix(5)
    n = x.shape[1]
    cat = _catalogue(fit_item_knn(x, n, SourcesConfig()))
    cands = user_candidates(cat, UserState(np.zeros(0, np.int64)), SourceSettings(per_source=5), 0.0)
    assert cands.rows.tolist() == [0, 1, 2, 3, 4] and set(cands.source) == {"popularity"}


def test_fit_sources_on_pairs_counts_popularity_in_the_window():
    pairs = pl.DataFrame(
        {"user_id": ["u1", "u1", "u2", "u3"], "video_id": ["a", "b", "a", "a"], "first_ts": [1, 2, 3, 4]}
    )
    fitted = fit_sources(pairs, ["a", "b", "c"], SourcesConfig(min_item_count=1), has_ts=True)
    assert fitted.popularity.tolist() == [1.0, 1 / 3, 0.0]
    assert fitted.info["method"] == "ease" and fitted.neighbours.n == 3
    again = type(fitted).from_bytes(fitted.to_bytes())
    assert again.video_ids.tolist() == ["a", "b", "c"] and again.info == fitted.info


def test_random_label_window_keeps_every_user_in_the_fit_window():
    rng = np.random.default_rng(0)
    users = [f"u{i}" for i in range(50) for _ in range(1 + i % 7)]
    train = pl.DataFrame({"user_id": users, "video_id": [f"v{rng.integers(1000)}" for _ in users]})
    config = PipelineConfig.model_validate({"split": {"strategy": "random"}})
    fit, label, how, cutoff = label_window(train.with_columns(first_ts=pl.lit(None, pl.Int64)), config, False)
    assert how == "random" and cutoff is None
    assert fit.height + label.height == train.height
    assert set(fit["user_id"]) == set(users)  # nobody loses their whole history
    assert 0.1 < label.height / train.height < 0.3


def test_time_label_window_cuts_at_one_time():
    train = pl.DataFrame(
        {"user_id": ["u"] * 10, "video_id": [str(i) for i in range(10)], "first_ts": list(range(10))}
    )
    config = PipelineConfig.model_validate({"split": {"strategy": "last_n"}, "sources": {"label_share": 0.3}})
    fit, label, how, cutoff = label_window(train, config, True)
    assert how == "time" and fit["first_ts"].max() <= cutoff < label["first_ts"].min()
    assert label.height == 3


def test_map_at_k_by_hand():
    hits = np.array([[True, False, True, False], [False, False, False, False]])
    # user 0: precision@1 = 1, precision@3 = 2/3, over min(2 relevant, 4) -> (1 + 2/3) / 2
    assert map_at_k(hits, np.array([2, 1]), 4) == pytest.approx(((1 + 2 / 3) / 2 + 0.0) / 2)


def _metrics(served: float, pop: float) -> dict:
    block = {"ndcg@10": served, "recall@100": 0.5, "ndcg@100": 0.2}
    return {
        "two_tower": block,
        "popularity": {"ndcg@10": pop, "recall@100": 0.4, "ndcg@100": 0.1},
        "ranker": {"auc": 0.7, "ndcg": 0.4},
        "served": {"choice": "item_item", **block},
    }


def test_default_gate_is_a_margin_over_popularity():
    assert check_gates(_metrics(0.106, 0.1), GatesConfig())["passed"] is True
    failed = check_gates(_metrics(0.104, 0.1), GatesConfig())
    assert failed["passed"] is False and failed["served"] == "item_item"
    assert [c["name"] for c in failed["checks"]] == ["served_ndcg_at_10_vs_popularity"]


def test_reference_thresholds_are_available_as_configuration():
    gates = GatesConfig(two_tower_ndcg_at_100=0.3, ranker_auc=0.6)
    out = check_gates(_metrics(0.5, 0.1), gates)
    assert {c["name"]: c["passed"] for c in out["checks"]} == {
        "served_ndcg_at_10_vs_popularity": True,
        "two_tower_ndcg_at_100": False,
        "ranker_auc": True,
    }
    assert out["passed"] is False


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top_rows_is_the_head_of_the_full_sort_ties_to_the_lower_row(seed):
    from recsys.ranking.candidates import SparseScores, eligible_rows, top_reached, top_rows

    rng = np.random.default_rng(seed)
    scores = rng.integers(-3, 6, 500).astype(np.float64)  # many ties, some not positive
    excluded = rng.choice(500, 60, replace=False)
    order = np.lexsort((np.arange(500), -scores))
    for n in (1, 10, 100, 499, 1000):
        for positive_only in (False, True):
            full = [r for r in order.tolist() if r not in set(excluded.tolist())]
            if positive_only:
                full = [r for r in full if scores[r] > 0]
            want = full[:n]
            eligible = eligible_rows(500, excluded)
            assert top_rows(scores, n, eligible, positive_only).tolist() == want
            assert top_rows(scores, n, eligible, positive_only, order=order).tolist() == want
            # an upper bound of the rows left out (the exclusions as given, repeats and all) walks a longer
            # head of the order: the same rows
            bound = excluded.size + 3
            assert (
                top_rows(scores, n, eligible, positive_only, order=order, ineligible=bound).tolist() == want
            )
            if positive_only:  # the neighbour sources' sparse scores: the same rows, same order
                reached = np.flatnonzero(scores != 0)
                sparse = SparseScores(reached, scores[reached])
                assert top_reached(sparse, n, eligible[reached]).tolist() == want
    assert top_rows(scores, 0, eligible_rows(500, excluded)).size == 0
