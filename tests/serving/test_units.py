"""Pure unit tests of the serving building blocks: retrieval, rules, user vector, bundle, ranker checks."""

from __future__ import annotations

import numpy as np

from recsys.serving.bundle import assemble_bundle, decode_bundle, encode_bundle
from recsys.serving.filters import apply_rules, max_per_category
from recsys.serving.retrieval import ExactIndex, HnswIndex, build_index, recall_at
from recsys.serving.user_vector import blend_user_vector, event_weights


def _clustered(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(32, 16)).astype(np.float32)
    emb = (centers[rng.integers(0, 32, n)] + 0.5 * rng.normal(size=(n, 16))).astype(np.float32)
    queries = (centers[rng.integers(0, 32, 20)] + 0.5 * rng.normal(size=(20, 16))).astype(np.float32)
    return emb, queries


def test_exact_index_is_exact_and_honours_masks():
    emb, queries = _clustered(300)
    index = ExactIndex(emb)
    q = queries[0]
    got = index.search(q, 10)
    assert got.rows.tolist() == np.argsort(-(emb @ q), kind="stable")[:10].tolist()
    allowed = np.zeros(300, dtype=bool)
    allowed[:50] = True
    masked = index.search(q, 100, allowed=allowed, exclude=np.array([0, 1, 2]))
    assert len(masked) == 47 and set(masked.rows.tolist()) == set(range(3, 50))
    assert np.all(np.diff(masked.scores) <= 0)


def test_hnsw_recall_and_filters():
    emb, queries = _clustered(3000, seed=1)
    exact, ann = ExactIndex(emb), HnswIndex(emb)
    recalls = [recall_at(exact.search(q, 50), ann.search(q, 50)) for q in queries]
    assert np.mean(recalls) >= 0.95
    allowed = np.arange(3000) % 7 == 0
    excl = np.flatnonzero(allowed)[:5]
    # a small subset (one category of many) is searched exactly: the exact index's answer
    got = ann.search(queries[0], 20, allowed=allowed, exclude=excl)
    assert got.rows.tolist() == exact.search(queries[0], 20, allowed=allowed, exclude=excl).rows.tolist()
    assert len(got) == 20 and allowed[got.rows].all() and not np.isin(got.rows, excl).any()
    read_only = allowed.copy()  # a version's category mask: its rows are kept between requests
    read_only.flags.writeable = False
    for exclude in (excl, excl[:2], excl):
        again = ann.search(queries[0], 20, allowed=read_only, exclude=exclude)
        expected = exact.search(queries[0], 20, allowed=allowed, exclude=exclude)
        assert again.rows.tolist() == expected.rows.tolist()
    # most of the catalogue goes through the graph's filter, which keeps out what it must
    most = np.arange(3000) % 20 != 0
    got = ann.search(queries[0], 50, allowed=most, exclude=np.flatnonzero(most)[:5])
    truth = exact.search(queries[0], 50, allowed=most, exclude=np.flatnonzero(most)[:5])
    assert len(got) == 50 and most[got.rows].all() and not np.isin(got.rows, np.flatnonzero(most)[:5]).any()
    assert recall_at(truth, got) >= 0.9
    unfiltered = ann.search(queries[0], 20, exclude=excl)
    assert len(unfiltered) == 20 and not np.isin(unfiltered.rows, excl).any()
    # a block of queries (the batch path) answers each as one request does
    block = ann.search_many(queries[:6], 20, [excl, excl[:0], excl, excl[:2], excl, excl[:0]])
    alone = [
        ann.search(q, 20, exclude=e)
        for q, e in zip(queries[:6], [excl, None, excl, excl[:2], excl, None], strict=True)
    ]
    assert [c.rows.tolist() for c in block] == [c.rows.tolist() for c in alone]
    restored = HnswIndex(emb, index_bytes=ann.to_bytes())
    assert restored.search(queries[0], 10).rows.tolist() == ann.search(queries[0], 10).rows.tolist()


def test_two_tower_candidates_from_the_ann_index_are_the_exact_ones_with_the_same_features():
    import dataclasses

    from recsys.ranking.candidates import (
        Catalogue,
        NeighbourTable,
        SourceSettings,
        UserState,
        user_candidates,
    )

    emb, queries = _clustered(3000, seed=2)
    rng = np.random.default_rng(4)
    exact = Catalogue(emb, rng.uniform(size=3000), rng.uniform(size=3000), np.array(["a", "b"] * 1500),
                      np.zeros(3000, np.int64), NeighbourTable.empty(3000))  # fmt: skip
    ann = dataclasses.replace(exact, ann_index=HnswIndex(emb))
    cfg = SourceSettings(per_source=50)
    shared = []
    for q in queries:
        history = rng.choice(3000, 20, replace=False)
        user = UserState(history, q)
        a, e = user_candidates(ann, user, cfg, 0.0), user_candidates(exact, user, cfg, 0.0)
        assert not np.isin(a.rows, history).any()
        both, ia, ie = np.intersect1d(a.rows, e.rows, return_indices=True)
        shared.append(both.size / e.rows.size)
        tt = slice(0, 1)  # the two-tower score column: exact for every candidate, however it was found
        np.testing.assert_allclose(a.features[ia, tt], e.features[ie, tt], rtol=1e-5, atol=1e-5)
    assert np.mean(shared) >= 0.95


def test_build_index_switches_at_threshold():
    emb, _ = _clustered(200)
    assert build_index(emb, ann_threshold=201).kind == "exact"
    assert build_index(emb, ann_threshold=200).kind == "hnsw"


def test_rules_cap_fill_and_relax():
    cats = np.array(["a"] * 6 + ["b"] * 2)
    fill_scores = np.linspace(1, 0, 8)
    # ranked candidates are all category a; the cap is 2 of k=4 -> two a, then b from popular fill
    picks = apply_rules([0, 1, 2, 3], [4.0, 3.0, 2.0, 1.0], cats, 4, excluded={1}, fill_rows=range(8),
                        fill_scores=fill_scores)  # fmt: skip
    assert [p.row for p in picks] == [0, 2, 6, 7]
    assert [p.origin for p in picks] == ["model", "model", "popular", "popular"]
    # k larger than what the cap allows: the cap is relaxed rather than returning fewer than k
    picks = apply_rules([0, 1, 2], [3.0, 2.0, 1.0], cats, 7, excluded=set(), fill_rows=range(8),
                        fill_scores=fill_scores)  # fmt: skip
    assert len(picks) == 7 and len({p.row for p in picks}) == 7
    # category filter and exclusions leave fewer than k: everything eligible comes back
    picks = apply_rules([], [], cats, 5, excluded={6}, fill_rows=range(8), fill_scores=fill_scores,
                        category="b")  # fmt: skip
    assert [p.row for p in picks] == [7]
    assert max_per_category(20) == 10 and max_per_category(1) == 1


def test_user_vector_blend():
    u = np.array([2.0, 0.0], dtype=np.float32)
    act = np.array([[0.0, 1.0]], dtype=np.float32)
    w = event_weights([{"event_type": "like"}])
    v = blend_user_vector(u, act, w, activity_weight=0.5)
    assert (
        v.from_model
        and v.from_activity
        and v.vector[1] > 0
        and np.isclose(np.linalg.norm(v.vector), 2.0 * np.sqrt(0.5))
    )
    only_act = blend_user_vector(None, act, w)
    assert not only_act.from_model and np.allclose(only_act.vector, [0.0, 1.0])
    assert blend_user_vector(None, np.zeros((0, 2), np.float32), np.zeros(0)) is None
    skips = event_weights([{"event_type": "skip"}])
    assert blend_user_vector(None, act, skips) is None  # a skip is not a preference


def test_bundle_roundtrip_and_alignment():
    ids = np.array(["v1", "v2", "v3"])
    emb = np.eye(3, 4, dtype=np.float32)
    catalog = {"video_id": ["v3", "v1", "v9"], "category": ["x", None, "z"], "popularity": [0.3, 0.1, 0.9]}
    history = {"user_id": ["u1", "u2"], "watched": [["v3", "nope"], []], "top_categories": [["x"], None]}
    arrays = assemble_bundle(ids, emb, catalog, np.array(["u1"]), np.ones((1, 4), np.float32), history)
    # catalogue order first (v9 has no embedding: dropped), then embedded videos missing from it
    assert arrays["video_ids"].tolist() == ["v3", "v1", "v2"]
    assert np.array_equal(arrays["video_embeddings"][0], emb[2])
    assert arrays["category"].tolist() == ["x", "unknown", "unknown"]
    assert arrays["user_ids"].tolist() == ["u1", "u2"]  # u2 has history only: zero embedding
    assert not arrays["user_embeddings"][1].any()
    assert arrays["history_video_idx"][
        arrays["history_offsets"][0] : arrays["history_offsets"][1]
    ].tolist() == [0]
    back = decode_bundle(encode_bundle(arrays, "v1"))
    assert all(np.array_equal(back[k], arrays[k]) for k in arrays)


def test_malloc_arenas_can_be_capped_in_a_worker_process():
    import sys

    from recsys.serving.wsgi import limit_malloc_arenas

    assert limit_malloc_arenas(2) is sys.platform.startswith("linux")
