"""The ranker's evaluator: a CatBoost model from its JSON export, evaluated with numpy only.

The one evaluator of the ranker outside catboost (no 264 MB catboost in the serving Lambda): serving,
the evaluation stage and the ranker stage's parity check all use `TreeEnsemble`. It supports what the
pipeline trains: oblivious trees over float features, one output dimension (Logloss, YetiRank, RMSE ...).
`predict` returns the raw formula value, equal to `CatBoost.predict(X, prediction_type="RawFormulaVal")`
within 1e-5 (tests/ml/test_json_ranker.py), and to a tree-by-tree walk kept as a test oracle
(tests/ml/catboost_oracle.py, tests/serving/test_ranking.py).

All trees are evaluated at once: their splits are stacked into [trees, depth] arrays (shallower trees
padded with never-true splits), so scoring 100 candidates with 300 trees takes a few numpy calls
(one gather of whole feature rows per split level, then one gather of the leaves) instead of a Python
loop over the trees.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from recsys.errors import ValidationError


class TreeEnsemble:
    """A CatBoost model loaded from `save_model(..., format="json")`; `predict` gives raw scores."""

    def __init__(self, model: dict[str, Any]) -> None:
        """Load the parsed JSON export (a dict); a ValidationError when it is not one this supports."""
        try:
            self._load(model)
        except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
            raise ValidationError(
                f"not a CatBoost JSON model: {exc!r}",
                hint="export with model.save_model(path, format='json')",
            ) from None

    def _load(self, model: dict[str, Any]) -> None:
        info = model["features_info"]
        if info.get("categorical_features"):
            raise ValueError("categorical features are not supported")
        floats = info.get("float_features", [])
        self.n_features = 1 + max((f["flat_feature_index"] for f in floats), default=-1)
        flat_index = {f["feature_index"]: f["flat_feature_index"] for f in floats}
        # NaN handling per feature: AsTrue means a NaN goes right (as if x > border).
        nan_goes_right = {f["feature_index"]: f.get("nan_value_treatment") == "AsTrue" for f in floats}
        trees = model["oblivious_trees"]
        self.n_trees = len(trees)
        depth = max((len(t["splits"]) for t in trees), default=0)
        self.depth = depth
        self.features = np.zeros((self.n_trees, depth), dtype=np.int64)
        self.borders = np.full((self.n_trees, depth), np.inf, dtype=np.float32)  # padding: never true
        self.nan_true = np.zeros((self.n_trees, depth), dtype=bool)
        self.leaves = np.zeros((self.n_trees, 2**depth), dtype=np.float64)
        for i, tree in enumerate(trees):
            splits = tree["splits"]
            for d, split in enumerate(splits):
                if split.get("split_type", "FloatFeature") != "FloatFeature":
                    raise ValueError(f"split type {split.get('split_type')!r} is not supported")
                self.features[i, d] = flat_index[split["float_feature_index"]]
                self.borders[i, d] = np.float32(split["border"])  # catboost compares in float32
                self.nan_true[i, d] = nan_goes_right[split["float_feature_index"]]
            leaves = np.asarray(tree["leaf_values"], dtype=np.float64)
            if leaves.ndim != 1 or leaves.shape[0] != 2 ** len(splits):
                raise ValueError("multi-dimensional leaf values are not supported")
            self.leaves[i, : leaves.shape[0]] = leaves
        self._flat_leaves = self.leaves.reshape(-1)
        self._leaf_offsets = (np.arange(self.n_trees, dtype=np.intp) * self.leaves.shape[1])[:, None]
        scale, bias = model.get("scale_and_bias", [1.0, [0.0]])
        self.scale = float(scale)
        self.bias = float(bias[0] if isinstance(bias, list) else bias)

    @classmethod
    def from_bytes(cls, data: bytes) -> TreeEnsemble:
        """Load from the bytes of a JSON export (e.g. an S3 object body)."""
        try:
            model = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationError(
                f"ranker model is not valid JSON: {exc}", hint="re-run the pipeline"
            ) from None
        return cls(model)

    @classmethod
    def from_file(cls, path: str | Path) -> TreeEnsemble:
        """Load from a JSON export on disk."""
        return cls.from_bytes(Path(path).read_bytes())

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Raw scores [n] for the feature matrix x [n, n_features] (higher = more relevant)."""
        x32 = np.asarray(x, dtype=np.float32)
        if x32.ndim != 2 or x32.shape[1] < self.n_features:
            raise ValidationError(
                f"feature matrix has shape {x32.shape}, the model needs [n, {self.n_features}]",
                hint="build it with recsys.ranking.candidates.user_candidates",
            )
        if self.n_trees == 0:
            return np.full(x32.shape[0], self.bias)
        # Feature-major: each split level gathers whole feature rows [trees, n] and compares them at once.
        xt = np.ascontiguousarray(x32.T)
        index = np.zeros((self.n_trees, xt.shape[1]), dtype=np.intp)
        nan = bool(np.isnan(xt).any())
        for d in range(self.depth):
            vals = xt[self.features[:, d]]
            bits = vals > self.borders[:, d, None]
            if nan:
                bits = np.where(np.isnan(vals), self.nan_true[:, d, None], bits)
            index |= bits.astype(np.intp) << d
        index += self._leaf_offsets
        total = np.take(self._flat_leaves, index).sum(axis=0)
        return self.scale * total + self.bias
