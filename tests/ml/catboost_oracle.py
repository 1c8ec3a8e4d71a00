"""Test oracle: a CatBoost JSON export evaluated by walking its trees one at a time.

Not production code: the evaluator is `recsys.ranking.tree_ensemble.TreeEnsemble` (all trees at once).
This slow, obvious walk parses the JSON on its own and is kept only to check that evaluator against it
(tests/serving/test_ranking.py, tests/ml/test_json_ranker.py). Supports what the pipeline trains: oblivious
trees over float features, one output dimension; `predict` returns CatBoost's RawFormulaVal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from recsys.errors import ValidationError


class TreeWalkRanker:
    """A CatBoost model loaded from `save_model(..., format="json")`, evaluated tree by tree."""

    def __init__(self, model: dict[str, Any]) -> None:
        try:
            self._load(model)
        except (KeyError, TypeError, IndexError, ValueError) as exc:
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
        # nan -> split value: AsTrue means NaN goes right (x > border is true).
        self._nan_true = {f["feature_index"]: f.get("nan_value_treatment") == "AsTrue" for f in floats}
        self._flat_index = {f["feature_index"]: f["flat_feature_index"] for f in floats}
        trees = model["oblivious_trees"]
        self.n_trees = len(trees)
        depths = [len(t["splits"]) for t in trees]
        self._trees: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for tree, depth in zip(trees, depths, strict=True):
            feats = np.array(
                [self._flat_index[s["float_feature_index"]] for s in tree["splits"]], dtype=np.int64
            )
            borders = np.array([s["border"] for s in tree["splits"]], dtype=np.float64)
            nan_true = np.array(
                [self._nan_true[s["float_feature_index"]] for s in tree["splits"]], dtype=bool
            )
            for s in tree["splits"]:
                if s.get("split_type", "FloatFeature") != "FloatFeature":
                    raise ValueError(f"split type {s.get('split_type')!r} is not supported")
            leaves = np.asarray(tree["leaf_values"], dtype=np.float64)
            if leaves.shape[0] != 2**depth:
                raise ValueError("multi-dimensional leaf values are not supported")
            self._trees.append((feats, borders, nan_true, leaves))
        scale, bias = model.get("scale_and_bias", [1.0, [0.0]])
        self.scale = float(scale)
        self.bias = float(bias[0] if isinstance(bias, list) else bias)

    @classmethod
    def from_bytes(cls, data: bytes) -> TreeWalkRanker:
        """Load from the bytes of a JSON export (e.g. an S3 object body)."""
        try:
            return cls(json.loads(data))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationError(
                f"ranker model is not valid JSON: {exc}", hint="re-run the pipeline"
            ) from None

    @classmethod
    def from_file(cls, path: str | Path) -> TreeWalkRanker:
        """Load from a JSON export on disk."""
        return cls.from_bytes(Path(path).read_bytes())

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Raw scores [n] for the feature matrix X [n, n_features] (higher = more relevant)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] < self.n_features:
            raise ValidationError(
                f"feature matrix has shape {X.shape}, the model needs [n, {self.n_features}]",
            )
        # CatBoost compares float32 features against float32 borders.
        X32 = X.astype(np.float32)
        total = np.zeros(X.shape[0], dtype=np.float64)
        for feats, borders, nan_true, leaves in self._trees:
            if feats.size == 0:
                total += leaves[0]
                continue
            vals = X32[:, feats]
            bits = vals > borders.astype(np.float32)
            nan = np.isnan(vals)
            if nan.any():
                bits = np.where(nan, nan_true, bits)
            index = bits.astype(np.int64) @ (1 << np.arange(feats.size, dtype=np.int64))
            total += leaves[index]
        return self.scale * total + self.bias
