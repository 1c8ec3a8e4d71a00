"""What the ranker, evaluation and refit stages share: the catalogue arrays of a run and its users' states."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from recsys.data import schema as s
from recsys.ranking.candidates import Catalogue, UserState
from recsys.sources.fit import FittedSources, catalogue, user_states


def aligned_embeddings(video_ids: list[str], emb: dict[str, np.ndarray]) -> np.ndarray:
    """Two-tower video vectors in catalogue order (zeros for a video the model did not embed)."""
    row = {v: i for i, v in enumerate(emb["video_ids"].astype(str).tolist())}
    dim = emb["video_vectors"].shape[1]
    out = np.zeros((len(video_ids), dim), dtype=np.float32)
    idx = [(i, row[v]) for i, v in enumerate(video_ids) if v in row]
    if idx:
        a, b = map(np.asarray, zip(*idx, strict=True))
        out[a] = emb["video_vectors"][b]
    return out


def user_vectors(emb: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """User id -> trained two-tower vector."""
    return dict(zip(emb["user_ids"].astype(str).tolist(), emb["user_vectors"], strict=True))


def run_catalogue(fitted: FittedSources, catalog: pl.DataFrame, emb: dict[str, np.ndarray]) -> Catalogue:
    """The scoring catalogue of a fit (the preprocessing catalogue's rows, sorted by video id)."""
    ids = fitted.video_ids.tolist()
    by_id = catalog.select(s.VIDEO_ID, s.CATEGORY, s.UPLOAD_TS).sort(s.VIDEO_ID)
    if by_id[s.VIDEO_ID].to_list() != ids:
        raise ValueError("sources and catalogue disagree on the videos")
    return catalogue(
        fitted, aligned_embeddings(ids, emb), by_id[s.CATEGORY].to_numpy(), by_id[s.UPLOAD_TS].to_numpy()
    )


def states_for(
    pairs: pl.DataFrame, ids: list[str], emb: dict[str, np.ndarray], seen: pl.DataFrame | None = None
) -> dict[str, UserState]:
    """Every user's state from a window's pairs (history), the two-tower vectors and seen pairs."""
    return user_states(pairs, ids, user_vectors(emb), seen)


def relevant_rows(
    pairs: pl.DataFrame, ids: list[str], users: list[str] | None = None
) -> dict[str, np.ndarray]:
    """User -> catalogue rows of their pairs (users sorted; `users` restricts them)."""
    row_of = {v: i for i, v in enumerate(ids)}
    g = pairs.group_by(s.USER_ID).agg(pl.col(s.VIDEO_ID)).sort(s.USER_ID)
    keep = None if users is None else set(users)
    return {
        u: np.fromiter((row_of[v] for v in vids if v in row_of), np.int64)
        for u, vids in zip(g[s.USER_ID].to_list(), g[s.VIDEO_ID].to_list(), strict=True)
        if keep is None or u in keep
    }


def sample_users(users: list[str], n: int, seed: int) -> list[str]:
    """At most `n` of `users`, seeded, sorted."""
    if len(users) <= n:
        return sorted(users)
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(np.asarray(sorted(users), dtype=object), n, replace=False).tolist())


def info_of(fitted: FittedSources) -> dict[str, Any]:
    return dict(fitted.info)
