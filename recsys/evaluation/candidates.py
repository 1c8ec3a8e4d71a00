"""Offline metrics of the candidate lists: the ranked list, each source alone and popularity, per segment.

Every list is a [n_users, depth] array of catalogue rows (-1 pads a short list); the metrics are those of
`recsys.evaluation.metrics` (binary relevance, mean over users). Segments: new users (at most
`NEW_USER_ITEMS` training items), heavy users (the top `HEAVY_SHARE` by training items) and long-tail items
(held-out items outside the most popular `HEAD_SHARE` of the catalogue's interacted videos).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recsys.evaluation import metrics as m

NEW_USER_ITEMS = 5
HEAVY_SHARE = 0.1
HEAD_SHARE = 0.2
METRICS = ("ndcg@10", "recall@10", "recall@100", "hit_rate@10", "map@10", "ndcg@100")


def list_metrics(recs: np.ndarray, relevant: Sequence[np.ndarray], n_items: int = 0) -> dict[str, float]:
    """nDCG@10/100, Recall@10/100, HR@10 and MAP@10 of one list over users (k capped at the list's depth)."""
    hits = m.hit_matrix(recs, relevant)
    n_rel = np.array([len(r) for r in relevant])
    depth = recs.shape[1]
    if depth == 0 or not len(relevant):
        return dict.fromkeys(METRICS, 0.0)

    def k(v: int) -> int:
        return min(v, depth)

    out = {
        "ndcg@10": m.ndcg_at_k(hits, n_rel, k(10)),
        "recall@10": m.recall_at_k(hits, n_rel, k(10)),
        "recall@100": m.recall_at_k(hits, n_rel, k(100)),
        "hit_rate@10": m.hit_rate_at_k(hits, n_rel, k(10)),
        "map@10": m.map_at_k(hits, n_rel, k(10)),
        "ndcg@100": m.ndcg_at_k(hits, n_rel, k(100)),
        "mrr@10": m.mrr_at_k(hits, n_rel, k(10)),
        "coverage@10": _coverage(recs[:, : k(10)], n_items),
    }
    return {name: round(float(v), 6) for name, v in out.items()}


def _coverage(recs: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in anyone's list."""
    return float(np.unique(recs[recs >= 0]).size / n_items) if n_items else 0.0


def segment_metrics(
    lists: dict[str, np.ndarray],
    relevant: Sequence[np.ndarray],
    train_items: np.ndarray,
    popularity: np.ndarray,
) -> dict[str, dict[str, Any]]:
    """Per segment and list: nDCG@10 and Recall@100 (long tail: Recall@100 of long-tail held-out items)."""
    train_items = np.asarray(train_items)
    heavy_from = np.quantile(train_items, 1.0 - HEAVY_SHARE) if train_items.size else 0
    interacted = np.nonzero(popularity > 0)[0]
    head = set(
        interacted[np.argsort(-popularity[interacted], kind="stable")][
            : int(HEAD_SHARE * interacted.size)
        ].tolist()
    )
    tail_rel = [np.asarray([r for r in rel.tolist() if r not in head], dtype=np.int64) for rel in relevant]
    masks = {
        f"new users (<= {NEW_USER_ITEMS} train items)": train_items <= NEW_USER_ITEMS,
        f"heavy users (top {int(HEAVY_SHARE * 100)}%)": train_items >= heavy_from,
    }
    out: dict[str, dict[str, Any]] = {}
    for seg, mask in masks.items():
        idx = np.nonzero(mask)[0]
        out[seg] = {"users": int(idx.size)}
        for name, recs in lists.items():
            sub = list_metrics(recs[idx], [relevant[i] for i in idx]) if idx.size else {}
            out[seg][name] = {"ndcg@10": sub.get("ndcg@10", 0.0), "recall@100": sub.get("recall@100", 0.0)}
    tail = f"long-tail items (outside the top {int(HEAD_SHARE * 100)}% by popularity)"
    out[tail] = {"held_out_items": int(sum(t.size for t in tail_rel))}
    for name, recs in lists.items():
        hits = m.hit_matrix(recs, tail_rel)
        n_rel = np.array([t.size for t in tail_rel])
        depth = min(100, recs.shape[1])
        out[tail][name] = {"recall@100": round(m.recall_at_k(hits, n_rel, depth), 6) if depth else 0.0}
    return out
