"""The ranker's evaluator: a CatBoost model from its JSON export, evaluated with numpy only.

The one evaluator of the ranker outside catboost (no 264 MB catboost in the serving Lambda): serving,
the evaluation stage and the ranker stage's parity check all use `TreeEnsemble`. It supports what the
pipeline trains: oblivious trees over float features, one output dimension (Logloss, YetiRank, RMSE ...).
`predict` returns the raw formula value, equal to `CatBoost.predict(X, prediction_type="RawFormulaVal")`
within 1e-5 (tests/ml/test_json_ranker.py), and to a tree-by-tree walk kept as a test oracle
(tests/ml/catboost_oracle.py, tests/serving/test_ranking.py).

All trees are evaluated at once: their splits are stacked into [trees, depth] arrays (shallower trees
padded with never-true splits), each distinct split compared once per row, so scoring 100 candidates
with 300 trees takes a few numpy calls (one comparison per distinct split, one gather of every level's
bits, one gather of the leaves) instead of a Python loop over the trees.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from recsys.errors import ValidationError

# Rows scored per pass: [trees, rows] temporaries beyond that spill out of the CPU caches.
ROWS_PER_PASS = 1024
# Consecutive shallow trees are evaluated as one tree of up to this depth (`_packed`).
PACKED_DEPTH = 8


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
        features, borders, nan_true, self._leaves = _packed(
            self.features, self.borders, self.nan_true, self.leaves
        )
        self._packed_trees, self._packed_depth = features.shape
        # Each distinct (feature, border, NaN side) split is tested once per row, then looked up per tree level.
        keys = np.stack(
            [features.ravel().astype(np.float64), borders.ravel().astype(np.float64),
             nan_true.ravel().astype(np.float64)], axis=1
        )  # fmt: skip
        unique, split_of = np.unique(keys, axis=0, return_inverse=True)
        self._split_feature = unique[:, 0].astype(np.intp)
        self._split_border = unique[:, 1].astype(np.float32)
        self._split_nan = unique[:, 2].astype(bool)
        # The splits of every tree level after level: one gather gives the [depth, trees, rows] bits.
        self._split_of_levels = split_of.reshape(features.shape).T.ravel().astype(np.intp)
        packed = self._packed_depth
        self._index_dtype = np.uint8 if packed <= 8 else np.uint16 if packed <= 16 else np.uint32
        self._level_bit = (1 << np.arange(packed)).astype(self._index_dtype)[:, None, None]
        # Leaf (tree t, index i) is flat entry t * leaves + i: one take instead of take_along_axis.
        self._leaves_flat = self._leaves.ravel()
        self._leaf_base = (np.arange(self._packed_trees, dtype=np.intp) * self._leaves.shape[1])[:, None]
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
        if x32.shape[0] > ROWS_PER_PASS:  # per row, small passes stay in cache: a big matrix goes in slices
            return np.concatenate(
                [self.predict(x32[i : i + ROWS_PER_PASS]) for i in range(0, x32.shape[0], ROWS_PER_PASS)]
            )
        # Feature-major: every distinct split is one comparison of a whole feature row [splits, n]; each tree
        # level then gathers its splits' bits, and the leaf index of every (tree, row) is built in uint8.
        xt = np.ascontiguousarray(x32.T)
        vals = xt[self._split_feature]
        bits = vals > self._split_border[:, None]
        if np.isnan(x32).any():
            bits = np.where(np.isnan(vals), self._split_nan[:, None], bits)
        bits = bits.view(np.uint8).astype(self._index_dtype, copy=False)
        levels = bits.take(self._split_of_levels, axis=0).reshape(
            self._packed_depth, self._packed_trees, xt.shape[1]
        )
        levels *= self._level_bit  # level d's bit of the leaf index
        index = np.bitwise_or.reduce(levels, axis=0).astype(np.intp)  # [trees, rows]
        index += self._leaf_base
        total = self._leaves_flat.take(index).sum(axis=0)
        return self.scale * total + self.bias


def _packed(
    features: np.ndarray, borders: np.ndarray, nan_true: np.ndarray, leaves: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The trees [trees, depth] regrouped as fewer, deeper oblivious trees of the same sum.

    Consecutive oblivious trees are one oblivious tree: their splits one after the other, a leaf for each
    combination of their leaves, holding the sum of those leaves. Packing trees up to PACKED_DEPTH levels
    (two trees of depth 4, four of depth 2) halves or quarters the leaf lookups, the costliest step of
    `predict`, for a leaf table that still fits the CPU cache (256 values per packed tree).
    """
    n_trees, depth = features.shape
    group = PACKED_DEPTH // depth if 0 < depth <= PACKED_DEPTH // 2 else 1
    if group == 1 or n_trees < 2:
        return features, borders, nan_true, leaves
    n_packed = -(-n_trees // group)
    pad = n_packed * group - n_trees  # trees that never split and add 0
    features = np.concatenate([features, np.zeros((pad, depth), features.dtype)])
    borders = np.concatenate([borders, np.full((pad, depth), np.inf, borders.dtype)])
    nan_true = np.concatenate([nan_true, np.zeros((pad, depth), bool)])
    leaves = np.concatenate([leaves, np.zeros((pad, leaves.shape[1]))]).reshape(n_packed, group, -1)
    # Tree j of a group gives bits j*depth.. of the packed leaf index: leaf (i_j, ..., i_0) at sum(i_j << j*depth).
    table = leaves[:, 0, :]
    for j in range(1, group):
        table = (leaves[:, j, :, None] + table[:, None, :]).reshape(n_packed, -1)
    return (
        features.reshape(n_packed, group * depth),
        borders.reshape(n_packed, group * depth),
        nan_true.reshape(n_packed, group * depth),
        table,
    )
