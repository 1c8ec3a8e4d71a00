"""Offline evaluation on the held-out split: two-tower vs popularity retrieval, and the ranker.

Retrieval: for each evaluated test user, the whole catalogue minus the videos the user saw in the train
period is ranked; Recall@k and nDCG@k are over the user's held-out videos. Ranker: each test user's
candidate list (held-out positives + sampled negatives) is re-ranked; AUC over all rows, nDCG over each
list (whole list and @10). The same lists are also ranked by two-tower score alone and by popularity.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from recsys.data import schema as s
from recsys.evaluation import metrics as m
from recsys.evaluation.baseline import popularity_recommendations
from recsys.evaluation.topk import retrieve


def _index_lists(df: pl.DataFrame, users: list[str], v_index: dict[str, int]) -> list[np.ndarray]:
    grouped = df.group_by(s.USER_ID).agg(pl.col(s.VIDEO_ID))
    lookup = dict(zip(grouped[s.USER_ID].to_list(), grouped[s.VIDEO_ID].to_list(), strict=True))
    return [np.array([v_index[v] for v in lookup.get(u, []) if v in v_index], dtype=np.int64) for u in users]


def retrieval_metrics(
    hits: np.ndarray, n_relevant: np.ndarray, recs: np.ndarray, ks: list[int], n_items: int
) -> dict[str, float]:
    """Recall, nDCG, hit rate, MRR and catalogue coverage at each k."""
    out: dict[str, float] = {}
    for k in ks:
        k_eff = min(k, hits.shape[1])
        out[f"recall@{k}"] = m.recall_at_k(hits, n_relevant, k_eff)
        out[f"ndcg@{k}"] = m.ndcg_at_k(hits, n_relevant, k_eff)
        out[f"hit_rate@{k}"] = m.hit_rate_at_k(hits, n_relevant, k_eff)
        out[f"mrr@{k}"] = m.mrr_at_k(hits, n_relevant, k_eff)
        out[f"coverage@{k}"] = m.catalog_coverage(recs, k_eff, n_items)
    return {k: round(v, 6) for k, v in out.items()}


def evaluate_retrieval(
    test: pl.DataFrame,
    seen: pl.DataFrame,
    emb: dict[str, np.ndarray],
    popularity: np.ndarray,
    ks: list[int],
    curve_max_k: int,
    max_users: int,
    seed: int,
) -> dict[str, Any]:
    """Two-tower and popularity retrieval metrics on the same users and exclusions."""
    video_ids = emb["video_ids"].tolist()
    v_index = {v: i for i, v in enumerate(video_ids)}
    u_index = {u: i for i, u in enumerate(emb["user_ids"].tolist())}
    users = sorted(u for u in test[s.USER_ID].unique().to_list() if u in u_index)
    if len(users) > max_users:
        rng = np.random.default_rng(seed)
        users = sorted(rng.choice(np.asarray(users, dtype=object), max_users, replace=False).tolist())
    relevant = _index_lists(test, users, v_index)
    exclude = _index_lists(seen, users, v_index)
    n_rel = np.array([len(r) for r in relevant])
    depth = min(max(max(ks), curve_max_k), len(video_ids))
    user_vecs = emb["user_vectors"][[u_index[u] for u in users]] if users else np.zeros((0, 64), np.float32)
    tt_recs = retrieve(user_vecs, emb["video_vectors"], exclude, depth)
    pop_recs = popularity_recommendations(popularity, exclude, depth)
    tt_hits, pop_hits = m.hit_matrix(tt_recs, relevant), m.hit_matrix(pop_recs, relevant)
    curve_ks = [k for k in range(1, depth + 1)]
    return {
        "users_evaluated": len(users),
        "held_out_items": int(n_rel.sum()),
        "catalog_size": len(video_ids),
        "two_tower": retrieval_metrics(tt_hits, n_rel, tt_recs, ks, len(video_ids)),
        "popularity": retrieval_metrics(pop_hits, n_rel, pop_recs, ks, len(video_ids)),
        "recall_curve": {
            "k": curve_ks,
            "two_tower": [round(m.recall_at_k(tt_hits, n_rel, k), 6) for k in curve_ks],
            "popularity": [round(m.recall_at_k(pop_hits, n_rel, k), 6) for k in curve_ks],
        },
    }


def evaluate_ranking(
    groups: np.ndarray, labels: np.ndarray, ranker: np.ndarray, two_tower: np.ndarray, popularity: np.ndarray
) -> dict[str, Any]:
    """AUC and list nDCG of the ranker and of the two baselines on the same candidate lists."""

    def block(scores: np.ndarray) -> dict[str, float]:
        return {
            "auc": round(m.auc(labels, scores), 6),
            "ndcg": round(m.grouped_ndcg(groups, labels, scores), 6),
            "ndcg@10": round(m.grouped_ndcg(groups, labels, scores, k=10), 6),
        }

    return {
        "ranker": {
            **block(ranker),
            "rows": int(labels.size),
            "lists": int(np.unique(groups).size),
            "positives": int(labels.sum()),
        },
        "ranker_baselines": {"two_tower": block(two_tower), "popularity": block(popularity)},
    }
