"""The array rules (`recsys.serving.rules.select`) pick exactly what the reference walk picks."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.serving.filters import apply_rules, max_per_category
from recsys.serving.rules import RANKED_CHUNK, Fill, FillOrder, select


def _world(rng: np.random.Generator, n: int, n_cats: int, skew: float):
    # `skew` > 0 makes category 0 dominate the head of the popularity order
    codes = rng.integers(0, n_cats, n)
    popularity = rng.uniform(0, 1, n) + skew * (codes == 0)
    return codes, popularity


def _reference(ranked, scores, codes, k, excluded, fills, cap, allowed):
    names = np.asarray([f"c{c}" for c in codes])
    fill_rows = np.concatenate([np.asarray(r, dtype=np.int64) for r, _, _ in fills]) if fills else []
    # the reference takes one fill list with one score array and origin: compare fills one at a time
    assert len({o for _, _, o in fills}) <= 1
    picks = apply_rules(ranked.tolist(), scores.tolist(), names, k, set(excluded.tolist()), fill_rows,
                        fills[0][1] if fills else np.zeros(len(codes)), fills[0][2] if fills else "popular",
                        None if allowed is None else f"c{allowed}", cap)  # fmt: skip
    return [p.row for p in picks], [p.score for p in picks], [p.origin for p in picks]


@pytest.mark.parametrize("seed", range(40))
def test_select_equals_the_reference_walk(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 3000))
    n_cats = int(rng.choice([1, 2, 3, 8, 20]))
    codes, popularity = _world(rng, n, n_cats, skew=float(rng.choice([0.0, 5.0])))
    k = int(rng.integers(1, 60))
    ranked = rng.choice(n, size=min(n, int(rng.integers(0, 120))), replace=False).astype(np.int64)
    scores = np.sort(rng.normal(size=ranked.shape[0]))[::-1]
    excluded = rng.choice(n, size=min(n, int(rng.integers(0, 300))), replace=False).astype(np.int64)
    allowed = int(rng.integers(0, n_cats)) if rng.uniform() < 0.25 else None
    cap = max_per_category(k, float(rng.choice([0.2, 0.5, 1.0])))
    order = np.argsort(-popularity, kind="stable")
    ref_rows, ref_scores, ref_origins = _reference(
        ranked, scores, codes, k, excluded, [(order, popularity, "popular")], cap, allowed
    )
    # one category (or one allowed) needs no cap: same result, by the rules' module docstring
    use_cap = None if (n_cats == 1 or allowed is not None) and rng.uniform() < 0.5 else cap
    got = select(ranked, scores, codes, n_cats, k, excluded, [Fill(FillOrder.build(order, codes, n_cats),
                 popularity, "popular")], use_cap, allowed)  # fmt: skip
    assert got.rows.tolist() == ref_rows
    assert got.scores.tolist() == pytest.approx(ref_scores)
    assert got.origins == ref_origins


@pytest.mark.parametrize("seed", range(40))
def test_a_ranked_list_walked_unchecked_equals_the_reference_walk(seed):
    # the candidate step's list: unique rows, none excluded, all in the allowed category; often longer than
    # the head that select walks first
    rng = np.random.default_rng(300 + seed)
    n = int(rng.integers(50, 3000))
    n_cats = int(rng.choice([1, 2, 3, 8, 20]))
    codes, popularity = _world(rng, n, n_cats, skew=float(rng.choice([0.0, 5.0])))
    k = int(rng.integers(1, 60))
    excluded = rng.choice(n, size=min(n // 2, int(rng.integers(0, 300))), replace=False).astype(np.int64)
    allowed = int(rng.integers(0, n_cats)) if rng.uniform() < 0.25 else None
    free = np.setdiff1d(np.arange(n), excluded)
    if allowed is not None:
        free = free[codes[free] == allowed]
    ranked = rng.permutation(free)[: int(rng.integers(0, 400))].astype(np.int64)
    if rng.uniform() < 0.5:  # one category at the top: the cap turns most of the head away
        ranked = ranked[np.argsort(codes[ranked] != codes[ranked[:1]].sum(), kind="stable")]
    scores = np.sort(rng.normal(size=ranked.shape[0]))[::-1]
    cap = max_per_category(k, float(rng.choice([0.1, 0.2, 0.5, 1.0])))
    order = np.argsort(-popularity, kind="stable")
    ref_rows, ref_scores, ref_origins = _reference(
        ranked, scores, codes, k, excluded, [(order, popularity, "popular")], cap, allowed
    )
    fills = [Fill(FillOrder.build(order, codes, n_cats), popularity, "popular")]
    got = select(ranked, scores, codes, n_cats, k, excluded, fills, cap, allowed, ranked_free=True)
    assert got.rows.tolist() == ref_rows
    assert got.scores.tolist() == pytest.approx(ref_scores)
    assert got.origins == ref_origins


@pytest.mark.parametrize("shift", [-1, 0, 1, 40])
def test_a_ranked_list_walked_unchecked_past_its_head_equals_the_reference_walk(shift):
    # one category fills the head of the list and its cap: the walk goes on past the head, and the row at
    # the boundary (the other category) is picked
    k, n = 20, 1_000
    codes = np.arange(n) % 2
    head = max(2 * k + 16, RANKED_CHUNK) + shift
    ranked = np.concatenate([np.arange(0, 2 * head, 2), np.arange(1, 201, 2)]).astype(np.int64)
    scores = np.linspace(1, 0, ranked.shape[0])
    popularity = np.linspace(1, 0, n)
    cap = max_per_category(k)
    ref_rows, _, ref_origins = _reference(
        ranked, scores, codes, k, np.zeros(0, np.int64), [(np.arange(n), popularity, "popular")], cap, None
    )
    fills = [Fill(FillOrder.build(np.arange(n), codes, 2), popularity, "popular")]
    got = select(ranked, scores, codes, 2, k, np.zeros(0, np.int64), fills, cap, ranked_free=True)
    assert got.rows.tolist() == ref_rows
    assert got.origins == ref_origins == ["model"] * k


@pytest.mark.parametrize("seed", range(10))
def test_short_prefix_then_long_order_equals_one_walk(seed):
    rng = np.random.default_rng(100 + seed)
    n, n_cats = 500, 5
    codes, popularity = _world(rng, n, n_cats, skew=3.0)
    order = np.argsort(-popularity, kind="stable")
    prefix = np.concatenate([order[codes[order] == c][:10] for c in (1, 2)])
    k = 30
    excluded = rng.choice(n, size=40, replace=False).astype(np.int64)
    cap = max_per_category(k)
    ref = apply_rules([], [], np.asarray([f"c{c}" for c in codes]), k, set(excluded.tolist()),
                      np.concatenate([prefix, order]), popularity, "trending", None, cap)  # fmt: skip
    got = select(np.zeros(0, np.int64), np.zeros(0), codes, n_cats, k, excluded,
                 [Fill(prefix, popularity, "trending"), Fill(FillOrder.build(order, codes, n_cats), popularity,
                  "trending")], cap)  # fmt: skip
    assert got.rows.tolist() == [p.row for p in ref]


def test_a_catalogue_of_one_category_does_not_walk_it():
    n = 200_000
    codes = np.zeros(n, dtype=np.int64)
    order = np.arange(n)
    fill = Fill(FillOrder.build(order, codes, 1), np.linspace(1, 0, n), "popular")
    ranked = np.arange(n - 100, n)
    got = select(ranked, np.linspace(1, 0, 100), codes, 1, 20, np.zeros(0, np.int64), [fill], None)
    assert got.rows.tolist() == ranked[:20].tolist()
    assert got.origins == ["model"] * 20


def test_fill_order_must_be_last():
    codes = np.zeros(10, dtype=np.int64)
    order = FillOrder.build(np.arange(10), codes, 1)
    with pytest.raises(ValueError):
        select(np.zeros(0, np.int64), np.zeros(0), codes, 1, 5, np.zeros(0, np.int64),
               [Fill(order, np.ones(10), "popular"), Fill(np.arange(3), np.ones(10), "popular")], None)  # fmt: skip


@pytest.mark.parametrize("seed", range(12))
def test_one_category_dominating_the_head_equals_the_reference(seed):
    # category 0 fills the first ~19k places of the popularity order: the head walk stops early and
    # the rest comes from the per-category lists (with a relaxed cap when the others run out)
    rng = np.random.default_rng(200 + seed)
    n = 20_000
    codes = np.where(rng.uniform(size=n) < 0.97, 0, rng.integers(1, 4, n))
    popularity = rng.uniform(0, 1, n) + 5.0 * (codes == 0)
    order = np.argsort(-popularity, kind="stable")
    k = int(rng.choice([10, 20, 100, 400]))
    ranked = order[: int(rng.integers(0, 50))]
    excluded = rng.choice(n, size=int(rng.integers(0, 500)), replace=False).astype(np.int64)
    cap = max_per_category(k)
    ref = apply_rules(ranked.tolist(), np.ones(ranked.shape[0]).tolist(), np.asarray([f"c{c}" for c in codes]),
                      k, set(excluded.tolist()), order, popularity, "popular", None, cap)  # fmt: skip
    got = select(ranked, np.ones(ranked.shape[0]), codes, 4, k, excluded,
                 [Fill(FillOrder.build(order, codes, 4), popularity, "popular")], cap)  # fmt: skip
    assert got.rows.tolist() == [p.row for p in ref]
    assert got.origins == [p.origin for p in ref]
