"""Re-ranking of the retrieved candidates with the ranker's JSON export (`recsys.ranking.tree_ensemble`, numpy only)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from recsys.errors import ValidationError
from recsys.features import RANKER_FEATURES, ranker_features
from recsys.ranking.tree_ensemble import TreeEnsemble

log = logging.getLogger(__name__)


class Ranker:
    """Scores candidates from online-store items with the ranker's JSON export (no catboost import).

    `model` is anything with `predict(features) -> scores`: a `TreeEnsemble` in production, a stub in tests.
    """

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
        return cls(TreeEnsemble.from_bytes(data), feature_names)

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
        return self.predict(ranker_features(user, list(videos), two_tower_scores, now_ts))

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Ranker scores of a feature matrix [n, len(RANKER_FEATURES)] (higher is better)."""
        return np.asarray(self.model.predict(features), dtype=np.float64).reshape(-1)
