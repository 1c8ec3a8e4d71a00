"""The shared ranker feature definition: serving form (items) == training form (joined tables)."""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import polars as pl

from recsys.data.ranker_rows import feature_matrix
from recsys.features import MISSING_DAYS, RANKER_FEATURES, ranker_features

NOW = 1_800_000_000
USER = {
    "user_id": "u1",
    "interaction_count": Decimal("4"),
    "total_weight": Decimal("9.5"),
    "last_interaction_ts": Decimal(NOW - 2 * 86_400),
    "top_category": "music",
    "category_affinity": {"music": Decimal("0.75"), "news": Decimal("0.25")},
}
VIDEOS = [
    {
        "video_id": "a",
        "category": "music",
        "duration": 200.0,
        "upload_ts": NOW - 10 * 86_400,
        "interaction_count": 30,
        "popularity": 1.0,
        "avg_watch_ratio": 0.5,
    },
    {
        "video_id": "b",
        "category": "news",
        "duration": 60.0,
        "upload_ts": NOW - 86_400,
        "interaction_count": 3,
        "popularity": 0.1,
        "avg_watch_ratio": 0.9,
    },
]


def test_serving_features_by_hand():
    X = ranker_features(USER, [*VIDEOS, None], np.array([0.5, -0.25, 0.0]), NOW)
    assert X.shape == (3, len(RANKER_FEATURES))
    col = {n: X[:, i] for i, n in enumerate(RANKER_FEATURES)}
    assert col["two_tower_score"].tolist() == [0.5, -0.25, 0.0]
    assert col["user_category_affinity"].tolist() == [0.75, 0.25, 0.0]
    assert col["is_top_category"].tolist() == [1.0, 0.0, 0.0]
    assert np.allclose(col["video_age_days"][:2], [10.0, 1.0]) and col["video_age_days"][2] == MISSING_DAYS
    assert np.allclose(col["user_days_since_last"], 2.0)
    assert np.allclose(col["video_log_interactions"][:2], np.log1p([30, 3]))
    assert np.isfinite(X).all()


def test_unknown_user_is_neutral():
    X = ranker_features(None, VIDEOS, np.zeros(2), NOW)
    col = {n: X[:, i] for i, n in enumerate(RANKER_FEATURES)}
    assert (col["user_log_interactions"] == 0).all() and (col["user_days_since_last"] == MISSING_DAYS).all()


def test_training_rows_equal_serving_items():
    users = pl.DataFrame(
        {
            "user_id": ["u1"],
            "interaction_count": [4],
            "total_weight": [9.5],
            "last_interaction_ts": [NOW - 2 * 86_400],
            "top_category": ["music"],
            "category_affinity": [json.dumps({"music": 0.75, "news": 0.25})],
        }
    )
    videos = pl.DataFrame(VIDEOS).rename({})
    rows = pl.DataFrame({"user_id": ["u1", "u1", "u1"], "video_id": ["a", "b", "zz"]})
    scores = np.array([0.5, -0.25, 0.0])
    trained = feature_matrix(rows, users, videos, scores, NOW)
    served = ranker_features(USER, [*VIDEOS, None], scores, NOW)
    assert np.allclose(trained, served)
