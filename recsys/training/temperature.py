"""Choosing the two-tower softmax temperature on a validation split.

The best temperature depends on the data: a sharp softmax (0.05) fits data with strong personal taste,
a softer one (0.3) data where popularity explains most of what users watch (bench/results/pipeline.md).
Each candidate trains on the train split minus each user's latest item and is scored by Recall@100 of
those held-back items; the winner is then trained on the whole train split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from recsys.data import schema as s
from recsys.evaluation.offline import evaluate_retrieval
from recsys.pipeline_config import TwoTowerConfig

ORDER = "_order"
MIN_TRAIN_ITEMS = 3  # a user needs this many train items to give one to validation
MAX_VALIDATION_USERS = 2000
SELECTION_K = 100


@dataclass
class TemperatureChoice:
    """The chosen temperature and what each candidate scored."""

    temperature: float
    scores: dict[str, float]
    validation_users: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "recall_at_100": self.scores,
            "validation_users": self.validation_users,
        }


def validation_split(train: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(train minus each eligible user's latest item, those latest items). Latest = highest `_order`."""
    order = ORDER if ORDER in train.columns else None
    ranked = train.with_columns(
        (pl.col(order) if order else pl.int_range(pl.len()))
        .rank("ordinal", descending=True)
        .over(s.USER_ID)
        .alias("_rk"),
        pl.len().over(s.USER_ID).alias("_n"),
    )
    held = (pl.col("_rk") == 1) & (pl.col("_n") >= MIN_TRAIN_ITEMS)
    return ranked.filter(~held).drop("_rk", "_n"), ranked.filter(held).drop("_rk", "_n")


def choose_temperature(
    train: pl.DataFrame,
    catalog: pl.DataFrame,
    user_features: pl.DataFrame,
    vocabularies: dict[str, list[str]],
    reference_ts: int,
    cfg: TwoTowerConfig,
) -> TemperatureChoice | None:
    """The candidate temperature with the best validation Recall@100, or None when there is nothing to choose
    (one candidate, or too few users with enough items to validate on)."""
    from recsys.training.two_tower import train_two_tower

    candidates = sorted(set(cfg.temperature_candidates))
    if len(candidates) < 2:
        return None
    fit, validation = validation_split(train)
    if validation.height < 20:
        return None
    pop_by_id = dict(zip(catalog[s.VIDEO_ID].to_list(), catalog[s.POPULARITY].to_list(), strict=True))
    steps = max(50, int(cfg.max_steps * cfg.selection_steps_share))
    scores: dict[str, float] = {}
    for t in candidates:
        result = train_two_tower(
            fit,
            catalog,
            user_features,
            vocabularies,
            reference_ts,
            cfg.model_copy(update={"temperature": t, "max_steps": steps, "temperature_candidates": []}),
        )
        emb = {
            "user_ids": result.user_ids,
            "user_vectors": result.user_embeddings,
            "video_ids": result.video_ids,
            "video_vectors": result.video_embeddings,
        }
        popularity = np.array([pop_by_id.get(v, 0.0) for v in result.video_ids.tolist()], dtype=np.float64)
        metrics = evaluate_retrieval(
            validation.select(s.USER_ID, s.VIDEO_ID),
            fit.select(s.USER_ID, s.VIDEO_ID),
            emb,
            popularity,
            [SELECTION_K],
            SELECTION_K,
            MAX_VALIDATION_USERS,
            cfg.seed,
        )
        scores[str(t)] = round(float(metrics["two_tower"][f"recall@{SELECTION_K}"]), 6)
    best = max(candidates, key=lambda t: (scores[str(t)], -abs(t - cfg.temperature)))
    return TemperatureChoice(
        temperature=best, scores=scores, validation_users=validation[s.USER_ID].n_unique()
    )
