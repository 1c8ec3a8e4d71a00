"""The ranker's evaluator (`TreeEnsemble`, all trees at once) equals the tree-walk oracle (and so CatBoost)."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.errors import ValidationError
from recsys.ranking.candidates import CANDIDATE_FEATURES
from recsys.ranking.tree_ensemble import TreeEnsemble
from tests.ml.catboost_oracle import TreeWalkRanker


def _random_model(rng: np.random.Generator, n_trees: int = 40, max_depth: int = 6) -> dict:
    n_feat = len(CANDIDATE_FEATURES)
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
        depth = int(rng.integers(0, max_depth + 1)) if t % 5 else max_depth  # mixed, including stumps
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


@pytest.mark.parametrize(
    ("seed", "max_depth", "n_trees"),
    # depth 6: one tree per level lookup; 4, 3 and 2: consecutive trees packed into one (an odd count
    # leaves a partial group)
    [(7, 6, 40), (8, 6, 40), (9, 6, 40), (10, 4, 41), (11, 3, 40), (12, 2, 43)],
)
def test_tree_ensemble_matches_the_tree_walk_oracle(seed, max_depth, n_trees):
    rng = np.random.default_rng(seed)
    model = _random_model(rng, n_trees, max_depth)
    oracle = TreeWalkRanker(model)
    fast = TreeEnsemble(model)
    assert (fast.n_trees, fast.n_features) == (oracle.n_trees, oracle.n_features)
    x = rng.normal(size=(257, len(CANDIDATE_FEATURES)))
    x[rng.random(x.shape) < 0.05] = np.nan
    x[:3] = np.array([s["border"] for t in model["oblivious_trees"] for s in t["splits"]][:1])  # on a border
    np.testing.assert_allclose(fast.predict(x), oracle.predict(x), rtol=0, atol=1e-9)


def test_degenerate_ensembles_match_the_oracle():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, len(CANDIDATE_FEATURES)))
    for n_trees in (0, 1):
        model = _random_model(rng, n_trees=n_trees)
        np.testing.assert_allclose(
            TreeEnsemble(model).predict(x), TreeWalkRanker(model).predict(x), atol=1e-12
        )
    stumps = _random_model(rng)
    for tree in stumps["oblivious_trees"]:
        tree["splits"], tree["leaf_values"] = [], tree["leaf_values"][:1]
    np.testing.assert_allclose(TreeEnsemble(stumps).predict(x), TreeWalkRanker(stumps).predict(x), atol=1e-12)


def test_unsupported_models_are_clear_errors():
    model = _random_model(np.random.default_rng(2), n_trees=3)
    model["oblivious_trees"][0]["splits"][0]["split_type"] = "OneHotFeature"
    with pytest.raises(ValidationError, match="split type 'OneHotFeature' is not supported"):
        TreeEnsemble(model)
    model = _random_model(np.random.default_rng(2), n_trees=3)
    model["features_info"]["categorical_features"] = [{"feature_index": 0}]
    with pytest.raises(ValidationError, match="categorical features"):
        TreeEnsemble(model)
