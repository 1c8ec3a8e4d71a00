"""The recommendation computation as steps over arrays, shared by one request and a batch block.

    user_query -> rank_sources_many -> choose -> label_sources -> reasons -> items

(`answer_many` runs all but the first.) `RecommendationService.compute_selection` runs them for one
request; `recsys.serving.batch` runs the same steps for a block of users (the store reads done for the
whole block first, one ranker call for the block), so both give the same items for the same user.
`rank_sources_many` is the candidate step: the union of the sources' top lists
(two-tower, item-item, recent activity, popularity) ordered by the ranker or the single source the
evaluation chose (`recsys.serving.sources`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.ranking.candidates import SOURCES, NeighbourHits
from recsys.ranking.row_sets import sorted_unique
from recsys.serving.filters import max_per_category
from recsys.serving.reasons import reasons as explain
from recsys.serving.rules import Fill, Selection, select
from recsys.serving.sources import rank_candidates_many, user_state
from recsys.serving.user_vector import blend_user_vector, event_weights

if TYPE_CHECKING:
    from recsys.config import ServingConfig
    from recsys.serving.model_store import ServingModel

COLD_START_PREFERRED_HEAD = 50  # popular items per preferred category tried first for a cold-start user


@dataclass
class UserQuery:
    """What one request knows about its user: query vector, rows to leave out, recent activity."""

    user_id: str
    vector: np.ndarray | None  # None: cold start
    excluded: np.ndarray  # sorted unique catalogue rows
    watched: np.ndarray
    recent_rows: np.ndarray
    recent: list[dict[str, Any]]
    preferred: list[str]

    @property
    def anchors(self) -> np.ndarray:
        """Rows a "similar to watched video" reason may point at."""
        return np.concatenate([self.recent_rows[:10], self.watched[-10:].astype(np.int64)])


def _newest_ts(events: list[dict[str, Any]]) -> float | None:
    stamps = [float(e["timestamp"]) for e in events if e.get("timestamp") is not None]
    return max(stamps) if stamps else None


def user_query(
    model: ServingModel,
    config: ServingConfig,
    user_id: str,
    activity: list[dict[str, Any]],
    exclude_watched: bool,
    engaged: Sequence[str] = (),
) -> UserQuery:
    """The query of one user from their recent `activity` (newest first), the videos they `engaged` with since
    training (left out, like the training history) and the model's history."""
    act_rows_all = model.rows_of([str(a["video_id"]) for a in activity] + [str(v) for v in engaged])
    recent = [a for a in activity[: config.activity_vector_events] if str(a["video_id"]) in model.video_row]
    recent_rows = model.rows_of([str(a["video_id"]) for a in recent])
    watched = model.watched_rows(user_id)
    excluded = (
        sorted_unique(np.concatenate([watched.astype(np.int64), act_rows_all]))
        if exclude_watched
        else np.zeros(0, dtype=np.int64)
    )
    user_emb = model.user_embedding(user_id)
    act_rows, act_weights = recent_rows, event_weights(recent)
    if user_emb is None and not len(recent_rows) and len(watched):
        # Known only through the training history (no trained embedding): that history is the activity.
        act_rows = watched[-config.activity_vector_events :].astype(np.int64)[::-1]
        act_weights = event_weights([{}] * len(act_rows))
    uv = blend_user_vector(user_emb, model.video_embeddings[act_rows], act_weights, config.activity_weight)
    return UserQuery(
        user_id,
        None if uv is None else uv.vector,
        excluded,
        watched,
        recent_rows,
        recent,
        model.top_categories(user_id),
    )


def history_rows(query: UserQuery) -> np.ndarray:
    """The user's history rows, oldest first: the training history, then the recent events."""
    return np.concatenate([query.watched.astype(np.int64), query.recent_rows[::-1].astype(np.int64)])


def rank_sources_many(
    model: ServingModel,
    config: ServingConfig,
    queries: Sequence[UserQuery],
    category: str | None,
    now_ts: int,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, NeighbourHits | None]]:
    """The candidate step of each query (with a vector): the union of the sources' top lists ordered by the
    served choice (the ranker over per-source features, or the single source the evaluation chose;
    `recsys.serving.sources`), one ranker call for all of them. Without the ranker (flag `ranking_enabled`
    off) the two-tower order stands. Returns rows, scores, each row's source (its index in SOURCES) and the
    history's neighbour entries by reached row (for reasons), per query."""
    allowed = model.category_masks[category] if category is not None else None
    states = [user_state(history_rows(q), q.vector, q.excluded, _newest_ts(q.recent)) for q in queries]
    ranked = rank_candidates_many(model, states, now_ts, allowed, use_ranker=config.ranking)
    return [(r.rows, r.scores, r.best_source, r.hits) for r in ranked]


def answer_many(
    model: ServingModel,
    config: ServingConfig,
    queries: Sequence[UserQuery],
    k: int,
    category: str | None,
    now_ts: int,
) -> list[tuple[Selection, str, list[str]]]:
    """Every step after `user_query` for each query: (selection, the answer's source, a reason per item).
    One request is a block of one; a batch block gets the same answer per user."""
    warm = [q for q in queries if q.vector is not None]
    ranked = iter(rank_sources_many(model, config, warm, category, now_ts) if warm else [])
    empty = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), None)
    out = []
    for q in queries:
        rows, scores, best_source, hits = next(ranked) if q.vector is not None else empty
        chosen, source = choose(model, config, q, rows, scores, k, category)
        label_sources(chosen, rows, best_source)
        out.append((chosen, source, reasons(model, q, chosen, now_ts, hits)))
    return out


def label_sources(chosen: Selection, rows: np.ndarray, best_source: np.ndarray) -> Selection:
    """Each chosen item's origin is the source that brought it (`best_source`: per candidate row, its index
    in SOURCES); fill-ups keep "popular" / "trending"."""
    from_model = [i for i, o in enumerate(chosen.origins) if o == "model"]
    if not from_model:
        return chosen
    origins = list(chosen.origins)
    for i in from_model:
        origins[i] = "two_tower"  # a row the candidate step did not return
    if rows.size:
        match = chosen.rows[from_model][:, None] == rows  # [picked, candidates]: a few thousand comparisons
        at = match.argmax(axis=1)  # the candidate it is (candidate rows are unique)
        for i, found, code in zip(
            from_model, match.any(axis=1).tolist(), best_source[at].tolist(), strict=True
        ):
            if found:
                origins[i] = SOURCES[code]
    chosen.origins = origins
    return chosen


def _cap(model: ServingModel, config: ServingConfig, k: int, category: str | None) -> int | None:
    # One category in the catalogue, or one asked for: a cap could only be relaxed again (no cap).
    if category is not None or len(model.categories) <= 1 or not config.diversity:
        return None
    return max_per_category(k, config.max_category_share)


def choose(
    model: ServingModel,
    config: ServingConfig,
    query: UserQuery,
    rows: np.ndarray,
    scores: np.ndarray,
    k: int,
    category: str | None,
) -> tuple[Selection, str]:
    """The business rules over ranked rows (or the cold-start lists when the query has no vector)."""
    allowed = model.category_index[category] if category is not None else None
    cap = _cap(model, config, k, category)
    codes, n_cat = model.category_codes, len(model.categories)
    if query.vector is None:  # cold start: popular/trending, preferred categories first
        score = model.trending_score
        if category is not None:
            fills = [Fill(model.fill_popular, score, "popular")]
        elif query.preferred:
            heads = [
                model.popular_by_category[c][:COLD_START_PREFERRED_HEAD]
                for c in query.preferred
                if c in model.popular_by_category
            ]
            first = np.concatenate(heads) if heads else np.zeros(0, np.int64)
            fills = [Fill(first, score, "popular"), Fill(model.fill_trending, score, "popular")]
        else:
            fills = [Fill(model.fill_trending, score, "trending")]
        empty = np.zeros(0, dtype=np.int64)
        return select(empty, np.zeros(0), codes, n_cat, k, query.excluded, fills, cap, allowed), "popular"
    fills = [Fill(model.fill_popular, model.popularity, "popular")]
    # The candidate step returns each row once, none excluded and all within the category asked for.
    selection = select(rows, scores, codes, n_cat, k, query.excluded, fills, cap, allowed, ranked_free=True)
    return selection, "model"


def reasons(
    model: ServingModel,
    query: UserQuery,
    chosen: Selection,
    now_ts: int | None = None,
    hits: NeighbourHits | None = None,
) -> list[str]:
    """Why each chosen item is there, from the source that brought it (`recsys.serving.reasons`); `hits`: the
    candidate step's neighbour entries of this query's history, when it ran."""
    if not len(chosen):
        return []
    now_ts = int(time.time()) if now_ts is None else now_ts
    return explain(model, chosen.rows, chosen.origins, history_rows(query), query.preferred, now_ts, hits)


def items(model: ServingModel, chosen: Selection, why: list[str]) -> list[dict[str, Any]]:
    """The response items of a selection (video id, rounded score, rank, category, reason, source)."""
    ids = model.video_ids[chosen.rows].tolist()
    cats = model.category[chosen.rows].tolist()
    scores = np.round(chosen.scores, 6).tolist()
    return [
        {"video_id": str(v), "score": s, "rank": i + 1, "category": str(c), "reason": r, "source": o}
        for i, (v, s, c, r, o) in enumerate(zip(ids, scores, cats, why, chosen.origins, strict=True))
    ]
