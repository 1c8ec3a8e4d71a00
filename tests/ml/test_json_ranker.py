"""The ranker's evaluator (numpy over catboost's JSON export) equals catboost (|diff| <= 1e-5) and the oracle."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recsys.errors import ValidationError
from recsys.pipeline_config import RankerConfig
from recsys.ranking.candidates import CANDIDATE_FEATURES
from recsys.ranking.tree_ensemble import TreeEnsemble

from .catboost_oracle import TreeWalkRanker

pytestmark = pytest.mark.slow


def _data(n: int = 2000, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(CANDIDATE_FEATURES)))
    X[::11, 3] = np.nan  # missing values take catboost's NaN path
    y = (X[:, 0] + 0.5 * X[:, 1] * X[:, 2] + rng.normal(scale=0.5, size=n) > 0).astype(int)
    groups = np.arange(n) // 10
    return X, y, groups


@pytest.mark.parametrize("loss", ["YetiRank", "Logloss"])
def test_parity_with_catboost(tmp_path, loss):
    from catboost import CatBoost

    from recsys.training.ranker import train_ranker

    X, y, groups = _data()
    result = train_ranker(X, y, groups, RankerConfig(loss=loss, iterations=60, depth=5))
    (tmp_path / "m.cbm").write_bytes(result.cbm)
    model = CatBoost()
    model.load_model(str(tmp_path / "m.cbm"))
    X_new, _, _ = _data(seed=1)  # unseen rows
    expected = model.predict(X_new, prediction_type="RawFormulaVal")
    ranker = TreeEnsemble.from_bytes(result.json)
    assert np.max(np.abs(ranker.predict(X_new) - expected)) <= 1e-5
    oracle = TreeWalkRanker.from_bytes(result.json)
    assert np.max(np.abs(oracle.predict(X_new) - expected)) <= 1e-5
    np.testing.assert_allclose(ranker.predict(X_new), oracle.predict(X_new), rtol=0, atol=1e-9)
    (tmp_path / "m.json").write_bytes(result.json)
    assert np.array_equal(TreeEnsemble.from_file(tmp_path / "m.json").predict(X_new), ranker.predict(X_new))
    assert ranker.n_trees == 60 and ranker.n_features == len(CANDIDATE_FEATURES)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValidationError, match="not valid JSON"):
        TreeEnsemble.from_bytes(b"{nope")
    with pytest.raises(ValidationError, match="not a CatBoost JSON model"):
        TreeEnsemble.from_bytes(json.dumps({"oblivious_trees": []}).encode())
    model = {
        "features_info": {
            "float_features": [{"feature_index": 0, "flat_feature_index": 0, "borders": [0.5]}]
        },
        "oblivious_trees": [
            {
                "leaf_values": [1.0, 2.0],
                "splits": [{"border": 0.5, "float_feature_index": 0, "split_type": "FloatFeature"}],
            }
        ],
        "scale_and_bias": [1.0, [0.25]],
    }
    ranker = TreeEnsemble(model)
    assert ranker.predict(np.array([[0.0], [1.0]])).tolist() == [1.25, 2.25]
    with pytest.raises(ValidationError, match="shape"):
        ranker.predict(np.zeros(3))
