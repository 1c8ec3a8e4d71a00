"""Feature matrices for (user, video) rows, built with the ONE feature definition of recsys.features.

Used for the ranker's training rows and its evaluation candidate lists, with the same item fields the
online feature store serves, so the matrix here equals what serving computes for the same items.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from recsys.data import schema as s
from recsys.features import ranker_feature_matrix


def two_tower_scores(
    rows: pl.DataFrame,
    user_ids: np.ndarray,
    user_vectors: np.ndarray,
    video_ids: np.ndarray,
    video_vectors: np.ndarray,
) -> np.ndarray:
    """Dot product of each row's user and video embeddings (0 where either has none)."""
    u_index = {u: i for i, u in enumerate(user_ids.tolist())}
    v_index = {v: i for i, v in enumerate(video_ids.tolist())}
    ui = np.fromiter(
        (u_index.get(u, -1) for u in rows[s.USER_ID].to_list()), dtype=np.int64, count=rows.height
    )
    vi = np.fromiter(
        (v_index.get(v, -1) for v in rows[s.VIDEO_ID].to_list()), dtype=np.int64, count=rows.height
    )
    ok = (ui >= 0) & (vi >= 0)
    out = np.zeros(rows.height, dtype=np.float64)
    if ok.any():
        out[ok] = np.einsum("ij,ij->i", user_vectors[ui[ok]], video_vectors[vi[ok]])
    return out


def feature_matrix(
    rows: pl.DataFrame,
    user_features: pl.DataFrame,
    video_features: pl.DataFrame,
    scores: np.ndarray,
    now_ts: float | np.ndarray,
) -> np.ndarray:
    """[rows, len(RANKER_FEATURES)] for rows (user_id, video_id) joined with the feature tables; `now_ts` is
    one time or one per row."""
    users = user_features.select(
        s.USER_ID,
        "interaction_count",
        "total_weight",
        "last_interaction_ts",
        "top_category",
        "category_affinity",
    ).with_row_index("_u")
    videos = video_features.select(
        s.VIDEO_ID, s.CATEGORY, s.DURATION, s.UPLOAD_TS, s.INTERACTION_COUNT, s.POPULARITY, s.AVG_WATCH_RATIO
    )
    joined = (
        rows.select(s.USER_ID, s.VIDEO_ID)
        .join(users, on=s.USER_ID, how="left", maintain_order="left")
        .join(videos, on=s.VIDEO_ID, how="left", maintain_order="left", suffix="_v")
    )
    affinity_maps = [json.loads(a) if a else {} for a in users["category_affinity"].to_list()]
    u_row = joined["_u"].to_numpy()
    u_row_ok = ~joined["_u"].is_null().to_numpy()
    affinity = [affinity_maps[int(i)] if ok else {} for i, ok in zip(u_row, u_row_ok, strict=True)]
    ucols = {
        "interaction_count": joined["interaction_count"].fill_null(0).to_numpy().astype(np.float64),
        "total_weight": joined["total_weight"].fill_null(0.0).to_numpy().astype(np.float64),
        "last_interaction_ts": joined["last_interaction_ts"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
        "top_category": joined["top_category"].to_list(),
        "category_affinity": affinity,
    }
    vcols = {
        "popularity": joined[s.POPULARITY].fill_null(0.0).to_numpy().astype(np.float64),
        "interaction_count": joined[s.INTERACTION_COUNT + "_v"].fill_null(0).to_numpy().astype(np.float64),
        "avg_watch_ratio": joined[s.AVG_WATCH_RATIO].fill_null(0.0).to_numpy().astype(np.float64),
        "duration": joined[s.DURATION].fill_null(0.0).to_numpy().astype(np.float64),
        "upload_ts": joined[s.UPLOAD_TS].cast(pl.Float64).fill_null(np.nan).to_numpy(),
        "category": joined[s.CATEGORY].to_list(),
    }
    return ranker_feature_matrix(ucols, vcols, scores, np.asarray(now_ts, dtype=np.float64))
