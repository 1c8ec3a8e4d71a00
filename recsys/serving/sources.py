"""Serving's candidate step: the sources' union for one user, ordered by the ranker (or the served source).

The same code as training and evaluation (`recsys.ranking.candidates.user_candidates`) over the serving bundle's
arrays: the two-tower vectors, the sparse item-item neighbour table, popularity and trending. The served choice
(`sources_meta["served"]`, decided by the evaluation) is the ranker or one source alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.errors import ValidationError
from recsys.ranking.candidates import (
    CANDIDATE_FEATURES,
    RANKED,
    SOURCES,
    Catalogue,
    NeighbourHits,
    NeighbourTable,
    SourceSettings,
    UserState,
    order,
    user_candidates,
)
from recsys.ranking.tree_ensemble import TreeEnsemble

if TYPE_CHECKING:
    from recsys.serving.model_store import ServingModel


class CandidateRanker:
    """The ranker's JSON export over CANDIDATE_FEATURES (numpy only)."""

    def __init__(self, model: Any, feature_names: list[str] | None) -> None:
        if feature_names is not None and list(feature_names) != CANDIDATE_FEATURES:
            raise ValidationError(
                f"the ranker was trained on features {list(feature_names)}, serving computes {CANDIDATE_FEATURES}",
                hint="retrain with this code version (recsys.ranking.candidates defines the features)",
            )
        self.model = model

    @classmethod
    def from_json_bytes(cls, data: bytes, feature_names: list[str] | None) -> CandidateRanker:
        return cls(TreeEnsemble.from_bytes(data), feature_names)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Scores (higher is better) of a candidate feature matrix."""
        return np.asarray(self.model.predict(features), dtype=np.float64).reshape(-1)


def sources_meta(raw: np.ndarray | str | None) -> dict[str, Any]:
    """The bundle's sources_meta JSON as a dict ({} when absent or unreadable)."""
    try:
        meta = json.loads(str(raw)) if raw is not None else {}
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def serving_catalogue(model: ServingModel) -> Catalogue:
    """The scoring catalogue of a serving model (its bundle arrays)."""
    return Catalogue(
        video_embeddings=model.video_embeddings,
        popularity=model.popularity,
        trending=model.trending,
        category=model.category,
        upload_ts=model.upload_ts,
        neighbours=NeighbourTable(model.neighbour_offsets, model.neighbour_idx, model.neighbour_weight),
        ann_index=model.index if model.index.kind == "hnsw" else None,
    )


def candidate_settings(meta: dict[str, Any]) -> SourceSettings:
    """The candidate settings the version was trained with (defaults for a version that records none)."""
    raw = meta.get("candidates") or {}
    return SourceSettings(
        per_source=int(raw.get("per_source", SourceSettings.per_source)),
        recent_events=int(raw.get("recent_events", SourceSettings.recent_events)),
        recent_decay=float(raw.get("recent_decay", SourceSettings.recent_decay)),
    )


@dataclass
class Ranked:
    """Candidate rows best first, their scores and the source each came from."""

    rows: np.ndarray
    scores: np.ndarray
    best_source: np.ndarray  # per row, the index in SOURCES of the source that ranks it best
    choice: str
    hits: NeighbourHits | None = None  # the history's neighbour entries by reached row (for reasons)


def served_choice(model: ServingModel, use_ranker: bool = True) -> str:
    """What orders the candidates: the ranker (RANKED) or one source, as the evaluation chose (the two-tower
    where the ranker would decide but is absent or switched off)."""
    meta = model.sources_info
    choice = meta.get("served") if meta.get("served") in (RANKED, *SOURCES) else RANKED
    if choice == RANKED and (model.ranker is None or not use_ranker):
        choice = "two_tower"
    return str(choice)


def rank_candidates_many(
    model: ServingModel,
    states: list[UserState],
    now_ts: float,
    allowed: np.ndarray | None = None,
    use_ranker: bool = True,
) -> list[Ranked]:
    """Each user's candidates (`user_candidates`) ordered by the served choice (`use_ranker=False`: the
    two-tower order wherever the ranker would have decided), with one ranker call for all of them. Each
    user's answer is the one they get alone."""
    choice = served_choice(model, use_ranker)
    settings = candidate_settings(model.sources_info)
    cands = [
        user_candidates(model.catalogue, state, settings, now_ts, allowed, keep_hits=True) for state in states
    ]
    scores: list[np.ndarray | None] = [None] * len(cands)
    if choice == RANKED:
        sizes = [len(c) for c in cands]
        if sum(sizes):
            if len(cands) == 1:  # one request
                scores = [model.ranker.predict(cands[0].features)]
            else:
                flat = model.ranker.predict(np.concatenate([c.features for c in cands if len(c)]))
                scores = list(np.split(flat, np.cumsum(sizes)[:-1]))
    out = []
    for c, s in zip(cands, scores, strict=True):
        if not len(c):
            out.append(Ranked(c.rows, np.zeros(0), c.best_source, choice, c.hits))
            continue
        idx, ordered = order(c, choice, s)
        out.append(Ranked(c.rows[idx], ordered, c.best_source[idx], choice, c.hits))
    return out


def user_state(
    history: np.ndarray, user_vector: np.ndarray | None, excluded: np.ndarray, last_ts: float | None = None
) -> UserState:
    """The sources' view of one user (history rows oldest first)."""
    return UserState(
        np.asarray(history, dtype=np.int64), user_vector, np.asarray(excluded, np.int64), last_ts
    )
