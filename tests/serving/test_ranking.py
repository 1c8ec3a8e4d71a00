"""The vectorised tree ensemble equals the reference JSON evaluator (and so CatBoost)."""

from __future__ import annotations

import json

import numpy as np

from recsys.features import RANKER_FEATURES
from recsys.ranking.json_ranker import JsonRanker
from recsys.serving.ranking import Ranker, TreeEnsemble


def _random_model(rng: np.random.Generator, n_trees: int = 40) -> dict:
    n_feat = len(RANKER_FEATURES)
    floats = [
        {
            "feature_index": i,
            "flat_feature_index": i,
            "nan_value_treatment": "AsTrue" if i % 2 else "AsFalse",
            "borders": [],
        }
        for i in range(n_feat)
    ]
    trees = []
    for t in range(n_trees):
        depth = int(rng.integers(0, 7)) if t % 5 else 6  # mixed depths, including stumps
        splits = [
            {
                "float_feature_index": int(rng.integers(0, n_feat)),
                "border": float(rng.normal()),
                "split_type": "FloatFeature",
            }
            for _ in range(depth)
        ]
        trees.append({"splits": splits, "leaf_values": rng.normal(size=2**depth).tolist()})
    return {
        "features_info": {"float_features": floats},
        "oblivious_trees": trees,
        "scale_and_bias": [0.7, [0.25]],
    }


def test_tree_ensemble_matches_json_ranker():
    rng = np.random.default_rng(7)
    model = _random_model(rng)
    reference = JsonRanker(model)
    fast = TreeEnsemble(reference)
    x = rng.normal(size=(257, len(RANKER_FEATURES)))
    x[rng.random(x.shape) < 0.05] = np.nan
    np.testing.assert_allclose(fast.predict(x), reference.predict(x), rtol=0, atol=1e-9)


def test_ranker_from_json_bytes_scores_candidates():
    rng = np.random.default_rng(3)
    ranker = Ranker.from_json_bytes(json.dumps(_random_model(rng)).encode(), RANKER_FEATURES)
    videos = [{"category": "music", "popularity": 0.5, "duration": 100.0, "upload_ts": 1}, None]
    scores = ranker.score({"top_category": "music"}, videos, np.array([0.3, 0.1]), now_ts=10)
    assert scores.shape == (2,) and np.all(np.isfinite(scores))
