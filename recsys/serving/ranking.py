"""Re-ranking of the retrieved candidates with the ranker's serving form (CatBoost JSON, pure numpy)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from recsys.errors import ValidationError
from recsys.features import RANKER_FEATURES, ranker_features

log = logging.getLogger(__name__)


class TreeEnsemble:
    """A CatBoost oblivious-tree ensemble evaluated for all trees at once (one gather per split level).

    `JsonRanker.predict` walks the trees one by one; with the pipeline's 300 trees that is ~3 ms per
    request. Here the splits of every tree are stacked into [trees, depth] arrays (shallower trees padded
    with never-true splits), so 100 candidates take a few numpy calls. Equal to `JsonRanker.predict`
    (tests/serving/test_ranking.py).
    """

    def __init__(self, json_ranker: Any) -> None:
        trees = json_ranker._trees  # (feature indices, borders, nan-goes-right, leaf values) per tree
        depth = max((t[0].size for t in trees), default=0)
        n = len(trees)
        self.features = np.zeros((n, depth), dtype=np.int64)
        self.borders = np.full((n, depth), np.inf, dtype=np.float32)
        self.nan_true = np.zeros((n, depth), dtype=bool)
        self.leaves = np.zeros((n, 2**depth), dtype=np.float64)
        for i, (feats, borders, nan_true, leaves) in enumerate(trees):
            d = feats.size
            self.features[i, :d] = feats
            self.borders[i, :d] = borders.astype(np.float32)
            self.nan_true[i, :d] = nan_true
            self.leaves[i, : leaves.shape[0]] = leaves
        self.weights = (1 << np.arange(depth, dtype=np.int64)).astype(np.int64)
        self.scale = float(json_ranker.scale)
        self.bias = float(json_ranker.bias)
        self.n_features = int(json_ranker.n_features)
        self._tree_index = np.arange(n)[None, :]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Raw scores [n] for features [n, n_features] (CatBoost's RawFormulaVal)."""
        x32 = np.asarray(x, dtype=np.float32)
        if x32.ndim != 2 or x32.shape[1] < self.n_features:
            raise ValidationError(
                f"feature matrix has shape {x32.shape}, the model needs [n, {self.n_features}]"
            )
        if self.features.shape[0] == 0:
            return np.full(x32.shape[0], self.bias)
        vals = x32[:, self.features]  # [n, trees, depth]
        bits = vals > self.borders
        nan = np.isnan(vals)
        if nan.any():
            bits = np.where(nan, self.nan_true, bits)
        index = bits.astype(np.int64) @ self.weights  # [n, trees]
        total = self.leaves[self._tree_index, index].sum(axis=1)
        return self.scale * total + self.bias


class Ranker:
    """Scores candidates from online-store items with the ranker's JSON export (no catboost import)."""

    def __init__(self, model: Any, feature_names: Sequence[str] | None = None) -> None:
        names = list(feature_names) if feature_names is not None else list(RANKER_FEATURES)
        if names != list(RANKER_FEATURES):
            raise ValidationError(
                f"the ranker was trained on features {names}, serving computes {RANKER_FEATURES}",
                hint="retrain the ranker with this code version (recsys.features defines the features)",
            )
        self.model = model
        self.feature_names = names

    @classmethod
    def from_json_bytes(cls, data: bytes, feature_names: Sequence[str] | None = None) -> Ranker:
        """A ranker from `ranker_model.json` bytes and the names in `ranker_features.json`."""
        from recsys.ranking.json_ranker import JsonRanker

        return cls(TreeEnsemble(JsonRanker.from_bytes(data)), feature_names)

    def score(
        self,
        user: Mapping[str, Any] | None,
        videos: Sequence[Mapping[str, Any] | None],
        two_tower_scores: np.ndarray,
        now_ts: int,
    ) -> np.ndarray:
        """Ranker scores of the candidates (higher is better), aligned with `videos`."""
        if not videos:
            return np.zeros(0)
        features = ranker_features(user, list(videos), two_tower_scores, now_ts)
        return np.asarray(self.model.predict(features), dtype=np.float64).reshape(-1)
