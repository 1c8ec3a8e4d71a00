"""Fit every non-neural source on one window of positive pairs, and the windows themselves.

Three fits per pipeline run, on three windows of the positive pairs (see docs/ml.md, "Windows"):
- `fit` = train minus the label window: the sources whose candidates the ranker learns from;
- `train` = the whole training split: the sources the evaluation stage measures;
- `all` = train + held-out pairs: the refit that is deployed.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from recsys.data import schema as s
from recsys.data.split import ORDER
from recsys.pipeline_config import SourcesConfig
from recsys.ranking.candidates import Catalogue, NeighbourTable, SourceSettings, UserState
from recsys.ranking.row_sets import run_starts
from recsys.sources.item_item import fit_neighbours

TRENDING_DAYS = 14
FIRST_TS = "first_ts"


@dataclass
class FittedSources:
    """The non-neural sources of one window, aligned with `video_ids` (the catalogue's rows)."""

    video_ids: np.ndarray
    neighbours: NeighbourTable
    popularity: np.ndarray
    trending: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """The .npz form (no pickle) stored beside the models."""
        buf = io.BytesIO()
        np.savez(
            buf,
            video_ids=self.video_ids.astype(str),
            neighbour_offsets=self.neighbours.offsets,
            neighbour_idx=self.neighbours.neighbours,
            neighbour_weight=self.neighbours.weights,
            popularity=self.popularity,
            trending=self.trending,
            info=np.asarray(json.dumps(self.info)),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> FittedSources:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(
                video_ids=z["video_ids"].astype(str),
                neighbours=NeighbourTable(z["neighbour_offsets"], z["neighbour_idx"], z["neighbour_weight"]),
                popularity=z["popularity"],
                trending=z["trending"],
                info=json.loads(str(z["info"])),
            )


def source_settings(cfg: SourcesConfig) -> SourceSettings:
    """The candidate settings of a pipeline config."""
    return SourceSettings(cfg.per_source, cfg.recent_events, cfg.recent_decay)


def in_time_order(pairs: pl.DataFrame) -> pl.DataFrame:
    """Pairs sorted by user, then oldest first (`_order`, else `first_ts`, else as given)."""
    key = ORDER if ORDER in pairs.columns else (FIRST_TS if FIRST_TS in pairs.columns else None)
    return pairs.sort([s.USER_ID, key] if key else [s.USER_ID], maintain_order=True)


def fit_sources(pairs: pl.DataFrame, video_ids: list[str], cfg: SourcesConfig, has_ts: bool) -> FittedSources:
    """Neighbour table, popularity and trending of one window's positive pairs over the catalogue `video_ids`."""
    row_of = {v: i for i, v in enumerate(video_ids)}
    ordered = in_time_order(pairs.filter(pl.col(s.VIDEO_ID).is_in(video_ids)))
    users = ordered[s.USER_ID].to_numpy()
    user_idx = np.cumsum(run_starts(users)) - 1
    item_idx = np.fromiter((row_of[v] for v in ordered[s.VIDEO_ID].to_list()), np.int64, ordered.height)
    n_users = int(user_idx.max()) + 1 if user_idx.size else 0
    table, info = fit_neighbours(user_idx, item_idx, n_users, len(video_ids), cfg)
    counts = np.bincount(item_idx, minlength=len(video_ids)).astype(np.float64)
    popularity = counts / max(counts.max(initial=0.0), 1.0)
    if has_ts and FIRST_TS in ordered.columns and ordered[FIRST_TS].null_count() < ordered.height:
        ts = ordered[FIRST_TS].to_numpy().astype(np.float64)
        recent = ts >= np.nanmax(ts) - TRENDING_DAYS * 86_400
    else:  # no timestamps: the last 10% of the window's pairs in file order are "recent"
        order = ordered[ORDER].to_numpy() if ORDER in ordered.columns else np.arange(ordered.height)
        recent = order >= np.quantile(order, 0.9) if order.size else np.zeros(0, bool)
    rc = np.bincount(item_idx[recent], minlength=len(video_ids)).astype(np.float64)
    trending = rc / max(rc.max(initial=0.0), 1.0)
    info.update({"pairs": int(ordered.height), "users": n_users})
    return FittedSources(np.asarray(video_ids, dtype=str), table, popularity, trending, info)


def catalogue(
    fitted: FittedSources, video_embeddings: np.ndarray, category: np.ndarray, upload_ts: np.ndarray
) -> Catalogue:
    """The scoring catalogue (arrays aligned with `fitted.video_ids`)."""
    return Catalogue(
        video_embeddings=np.asarray(video_embeddings, dtype=np.float32),
        popularity=fitted.popularity,
        trending=fitted.trending,
        category=np.asarray(category).astype(str),
        upload_ts=np.asarray(upload_ts, dtype=np.int64),
        neighbours=fitted.neighbours,
    )


def user_states(
    pairs: pl.DataFrame,
    video_ids: list[str],
    user_vectors: dict[str, np.ndarray],
    exclude: pl.DataFrame | None = None,
) -> dict[str, UserState]:
    """Each user's state from a window's positive pairs (history oldest first), vectors and seen pairs."""
    row_of = {v: i for i, v in enumerate(video_ids)}
    ordered = in_time_order(pairs)
    has_ts = FIRST_TS in ordered.columns
    grouped = ordered.group_by(s.USER_ID, maintain_order=True).agg(
        pl.col(s.VIDEO_ID), (pl.col(FIRST_TS).max() if has_ts else pl.lit(None)).alias("_last")
    )
    seen: dict[str, list[str]] = {}
    if exclude is not None:
        ex = exclude.group_by(s.USER_ID).agg(pl.col(s.VIDEO_ID))
        seen = dict(zip(ex[s.USER_ID].to_list(), ex[s.VIDEO_ID].to_list(), strict=True))
    out: dict[str, UserState] = {}
    for user, vids, last in zip(
        grouped[s.USER_ID].to_list(), grouped[s.VIDEO_ID].to_list(), grouped["_last"].to_list(), strict=True
    ):
        hist = np.fromiter((row_of[v] for v in vids if v in row_of), np.int64)
        ex = None
        if user in seen:
            ex = np.union1d(hist, np.fromiter((row_of[v] for v in seen[user] if v in row_of), np.int64))
        out[user] = UserState(hist, user_vectors.get(user), ex, None if last is None else float(last))
    return out
