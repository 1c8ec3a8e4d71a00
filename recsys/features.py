"""The ONE definition of the ranker's features, shared by training and serving so they cannot skew.

Inputs are online-feature-store items (see docs/ml.md): a user item (or None for an unknown user),
one video item per candidate (None for a video the store lacks), the two-tower score of each candidate
and the reference time `now_ts` (epoch seconds). Pure numpy: safe to import in the serving Lambda.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

SECONDS_PER_DAY = 86_400.0

# Model order. Never reorder without retraining: the ranker's artifacts record this list.
RANKER_FEATURES: list[str] = [
    "two_tower_score",
    "video_popularity",
    "video_log_interactions",
    "video_avg_watch_ratio",
    "video_log_duration",
    "video_age_days",
    "user_log_interactions",
    "user_log_total_weight",
    "user_days_since_last",
    "user_category_affinity",
    "is_top_category",
]

# Value used when a user or video is unknown (None) or an attribute is missing.
MISSING_DAYS = 3650.0


def user_columns(users: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """Columnar form of user items: numeric arrays plus the top category and affinity maps."""
    n = len(users)
    count = np.zeros(n)
    weight = np.zeros(n)
    last_ts = np.full(n, np.nan)
    top: list[str | None] = [None] * n
    affinity: list[Mapping[str, Any]] = [{}] * n
    for i, u in enumerate(users):
        if not u:
            continue
        count[i] = _num(u.get("interaction_count"), 0.0)
        weight[i] = _num(u.get("total_weight"), 0.0)
        last_ts[i] = _num(u.get("last_interaction_ts"), np.nan)
        top[i] = u.get("top_category")
        affinity[i] = _affinity_map(u.get("category_affinity"))
    return {
        "interaction_count": count,
        "total_weight": weight,
        "last_interaction_ts": last_ts,
        "top_category": top,
        "category_affinity": affinity,
    }


def video_columns(videos: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """Columnar form of video items (missing videos get neutral values)."""
    n = len(videos)
    out = {
        "popularity": np.zeros(n),
        "interaction_count": np.zeros(n),
        "avg_watch_ratio": np.zeros(n),
        "duration": np.zeros(n),
        "upload_ts": np.full(n, np.nan),
    }
    category: list[str | None] = [None] * n
    for i, v in enumerate(videos):
        if not v:
            continue
        out["popularity"][i] = _num(v.get("popularity"), 0.0)
        out["interaction_count"][i] = _num(v.get("interaction_count"), 0.0)
        out["avg_watch_ratio"][i] = _num(v.get("avg_watch_ratio"), 0.0)
        out["duration"][i] = _num(v.get("duration"), 0.0)
        out["upload_ts"][i] = _num(v.get("upload_ts"), np.nan)
        category[i] = v.get("category")
    return {**out, "category": category}


def ranker_feature_matrix(
    users: Mapping[str, Any],
    videos: Mapping[str, Any],
    two_tower_scores: np.ndarray,
    now_ts: float | np.ndarray,
) -> np.ndarray:
    """Feature matrix [n, len(RANKER_FEATURES)] from row-aligned user and video columns.

    `now_ts` is one time, or one per row (training computes each row at its positive's time).

    `users` and `videos` are the outputs of `user_columns` / `video_columns` with one row per candidate
    (training broadcasts each user over its candidates). float64, no NaN.
    """
    scores = np.asarray(two_tower_scores, dtype=np.float64).reshape(-1)
    n = scores.shape[0]
    vid_cat = videos["category"]
    top = users["top_category"]
    aff = users["category_affinity"]
    if not (len(vid_cat) == len(top) == n):
        raise ValueError(f"misaligned inputs: {n} scores, {len(top)} user rows, {len(vid_cat)} video rows")
    affinity = np.fromiter(
        (_num(a.get(c), 0.0) if c is not None else 0.0 for a, c in zip(aff, vid_cat, strict=True)),
        dtype=np.float64,
        count=n,
    )
    is_top = np.fromiter(
        (
            1.0 if (c is not None and t is not None and c == t) else 0.0
            for t, c in zip(top, vid_cat, strict=True)
        ),
        dtype=np.float64,
        count=n,
    )
    return _matrix(scores, videos, users, affinity, is_top, now_ts)


def _matrix(
    scores: np.ndarray,
    videos: Mapping[str, Any],
    users: Mapping[str, Any],
    affinity: np.ndarray,
    is_top: np.ndarray,
    now_ts: float | np.ndarray,
) -> np.ndarray:
    upload = np.asarray(videos["upload_ts"], dtype=np.float64)
    age = np.where(np.isnan(upload), MISSING_DAYS, np.clip((now_ts - upload) / SECONDS_PER_DAY, 0.0, None))
    last = np.asarray(users["last_interaction_ts"], dtype=np.float64)
    since = np.where(np.isnan(last), MISSING_DAYS, np.clip((now_ts - last) / SECONDS_PER_DAY, 0.0, None))
    cols = [
        np.nan_to_num(scores, nan=0.0),
        np.asarray(videos["popularity"], dtype=np.float64),
        np.log1p(np.clip(np.asarray(videos["interaction_count"], dtype=np.float64), 0.0, None)),
        np.asarray(videos["avg_watch_ratio"], dtype=np.float64),
        np.log1p(np.clip(np.asarray(videos["duration"], dtype=np.float64), 0.0, None)),
        age,
        np.log1p(np.clip(np.asarray(users["interaction_count"], dtype=np.float64), 0.0, None)),
        np.log1p(np.clip(np.asarray(users["total_weight"], dtype=np.float64), 0.0, None)),
        since,
        affinity,
        is_top,
    ]
    return np.nan_to_num(np.column_stack(cols), nan=0.0, posinf=0.0, neginf=0.0)


def ranker_features(
    user: Mapping[str, Any] | None,
    videos: Sequence[Mapping[str, Any] | None],
    two_tower_scores: np.ndarray,
    now_ts: int,
) -> np.ndarray:
    """Feature matrix [len(videos), len(RANKER_FEATURES)] for one user's candidates (serving form)."""
    n = len(videos)
    ucols = user_columns([user])
    broadcast = {
        "interaction_count": np.repeat(ucols["interaction_count"], n),
        "total_weight": np.repeat(ucols["total_weight"], n),
        "last_interaction_ts": np.repeat(ucols["last_interaction_ts"], n),
        "top_category": ucols["top_category"] * n,
        "category_affinity": ucols["category_affinity"] * n,
    }
    return ranker_feature_matrix(broadcast, video_columns(videos), two_tower_scores, float(now_ts))


def _affinity_map(value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):  # the offline store keeps it as a JSON string
        import json

        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}


def _num(value: Any, default: float) -> float:
    if value is None:
        return default
    try:
        out = float(value)  # Decimal, int, float, numeric str
    except (TypeError, ValueError):
        return default
    return out if np.isfinite(out) else default


def user_ranker_features(
    user: Mapping[str, Any] | None,
    videos: Mapping[str, np.ndarray],
    category_codes: np.ndarray,
    category_index: Mapping[str, int],
    two_tower_scores: np.ndarray,
    now_ts: float,
) -> np.ndarray:
    """`ranker_features` for one user's candidates given as arrays: no Python loop over candidates.

    `videos` holds the numeric video columns of `video_columns` as arrays aligned with the candidates;
    `category_codes` their categories as indices into `category_index` (-1: the video or its category is
    unknown). Equal to `ranker_features` on the same items (tests/serving/test_units.py).
    """
    scores = np.asarray(two_tower_scores, dtype=np.float64).reshape(-1)
    n = scores.shape[0]
    ucols = user_columns([user])
    codes = np.asarray(category_codes, dtype=np.int64)
    by_code = np.zeros(len(category_index) + 1)  # the last slot stands for "unknown" (code -1)
    for cat, value in ucols["category_affinity"][0].items():
        code = category_index.get(str(cat))
        if code is not None:
            by_code[code] = _num(value, 0.0)
    affinity = by_code[codes]
    top = ucols["top_category"][0]
    top_code = category_index.get(str(top), -2) if top is not None else -2
    is_top = ((codes == top_code) & (codes >= 0)).astype(np.float64)
    users = {
        key: np.repeat(ucols[key], n) for key in ("interaction_count", "total_weight", "last_interaction_ts")
    }
    return _matrix(scores, videos, users, affinity, is_top, float(now_ts))
