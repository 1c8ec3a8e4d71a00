"""The CatBoost ranker: trains on the shared feature matrix and exports the .cbm and JSON forms."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import recsys.training  # noqa: F401
from recsys.pipeline_config import RankerConfig
from recsys.progress import report
from recsys.ranking.candidates import CANDIDATE_FEATURES

CLASSIFICATION_LOSSES = ("Logloss",)


@dataclass
class RankerResult:
    """The trained model in both forms, plus training facts."""

    cbm: bytes
    json: bytes
    info: dict[str, Any] = field(default_factory=dict)


class _IterationProgress:
    """A CatBoost callback that reports the boosting iterations (`recsys.progress`: the CLI draws a bar)."""

    def __init__(self, total: int, every: int = 10) -> None:
        self.total, self.every = total, every
        report("ranker training", 0, total, "iterations")

    def after_iteration(self, info: Any) -> bool:
        done = info.iteration + 1
        if done % self.every == 0 or done == self.total:
            report("ranker training", done, self.total, "iterations")
        return True  # never stop training early


def train_ranker(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    cfg: RankerConfig,
    feature_names: list[str] | None = None,
) -> RankerResult:
    """Train on rows grouped by user (`groups` must be contiguous: sort by user first)."""
    names = list(feature_names) if feature_names is not None else list(CANDIDATE_FEATURES)
    from catboost import CatBoost, Pool

    started = time.perf_counter()
    params = {
        "loss_function": cfg.loss,
        "iterations": cfg.iterations,
        "depth": cfg.depth,
        "learning_rate": cfg.learning_rate,
        "random_seed": cfg.seed,
        "thread_count": -1,
        "verbose": False,
        "allow_writing_files": False,
    }
    pool = Pool(X, label=y, group_id=groups, feature_names=names)
    model = CatBoost(params)
    model.fit(pool, callbacks=[_IterationProgress(cfg.iterations)])
    with tempfile.TemporaryDirectory() as tmp:
        cbm_path, json_path = Path(tmp) / "ranker_model.cbm", Path(tmp) / "ranker_model.json"
        model.save_model(str(cbm_path), format="cbm")
        model.save_model(str(json_path), format="json")
        cbm, js = cbm_path.read_bytes(), json_path.read_bytes()
    importance = model.get_feature_importance(pool if cfg.loss not in CLASSIFICATION_LOSSES else None)
    return RankerResult(
        cbm=cbm,
        json=js,
        info={
            "loss": cfg.loss,
            "iterations": cfg.iterations,
            "depth": cfg.depth,
            "learning_rate": cfg.learning_rate,
            "rows": int(X.shape[0]),
            "groups": int(np.unique(groups).size),
            "positives": int(np.asarray(y).sum()),
            "feature_importance": {n: round(float(v), 4) for n, v in zip(names, importance, strict=True)},
            "seconds": round(time.perf_counter() - started, 3),
        },
    )
