"""Stage 2b: train the CatBoost ranker on the shared features, with the served two-tower's scores.

Input: {**preprocessing_output, "two_tower": two_tower_output}. Writes under
s3://{models}/models/ranker/{version}/: ranker_model.cbm, ranker_model.json (numpy-evaluable) and
ranker_features.json. The JSON form is checked against catboost before anything is written.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from recsys import artifacts as paths
from recsys.config import Settings
from recsys.data import schema as s
from recsys.data.negatives import EVENT_TS
from recsys.data.ranker_rows import feature_matrix, two_tower_scores
from recsys.errors import RecsysError
from recsys.features import RANKER_FEATURES
from recsys.ids import check_id
from recsys.pipeline_config import PipelineConfig
from recsys.ranking.tree_ensemble import TreeEnsemble
from recsys.stages.embeddings import load_embeddings
from recsys.stages.two_tower import load_inputs
from recsys.storage import put_bytes, put_json

PARITY_TOLERANCE = 1e-5


def run(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Train the ranker for the run in `event`."""
    from recsys.training.ranker import train_ranker

    version = check_id(event["version"], "version")
    config = PipelineConfig.model_validate(event["config"])
    data = load_inputs(event, settings, "ranker_train", "user_features", "video_features")
    emb = load_embeddings(event["two_tower"], settings)
    rows: pl.DataFrame = data["ranker_train"]
    if rows.height > config.ranker.max_train_rows:  # subsample whole users, keeping their lists intact
        users = (
            rows.select(s.USER_ID)
            .unique()
            .sort(s.USER_ID)
            .sample(fraction=config.ranker.max_train_rows / rows.height, seed=config.ranker.seed)
        )
        rows = rows.join(users, on=s.USER_ID, how="semi")
    rows = rows.sort(s.USER_ID, maintain_order=True)
    scores = two_tower_scores(
        rows, emb["user_ids"], emb["user_vectors"], emb["video_ids"], emb["video_vectors"]
    )
    now_ts = int(event.get("reference_ts") or 0)
    # Point in time: each training row's features are computed at its positive's time (see preprocessing).
    row_now = rows[EVENT_TS].fill_null(now_ts).to_numpy() if EVENT_TS in rows.columns else now_ts
    X = feature_matrix(rows, data["user_features"], data["video_features"], scores, row_now)
    y = rows[s.LABEL].to_numpy()
    groups = rows[s.USER_ID].rank("dense").to_numpy().astype(np.int64)
    result = train_ranker(X, y, groups, config.ranker)

    # The serving form must score exactly like catboost (checked here, on real rows, before any write).
    parity = _parity(result.cbm, result.json, X[:5000])
    if parity > PARITY_TOLERANCE:
        raise RecsysError(f"JSON ranker differs from catboost by {parity:.2e}", hint="report this as a bug")

    bucket = settings.names.bucket("models")
    artifacts = {
        "ranker_model": put_bytes(
            settings,
            bucket,
            paths.ranker_key(version, "ranker_model.cbm"),
            result.cbm,
            "application/octet-stream",
        ),
        "ranker_model_json": put_bytes(
            settings, bucket, paths.ranker_key(version, "ranker_model.json"), result.json, "application/json"
        ),
        "ranker_features": put_json(
            settings,
            bucket,
            paths.ranker_key(version, "ranker_features.json"),
            {
                "features": list(RANKER_FEATURES),
                "loss": config.ranker.loss,
                "score": "raw formula value (higher = more relevant)",
                "reference_ts": now_ts,
            },
        ),
    }
    return {
        "model": "ranker",
        "version": version,
        "models_bucket": bucket,
        "artifacts": artifacts,
        "train": {**result.info, "parity_max_abs_diff": parity},
    }


def _parity(cbm: bytes, js: bytes, X: np.ndarray) -> float:
    import tempfile

    from catboost import CatBoost

    model = CatBoost()
    with tempfile.NamedTemporaryFile(suffix=".cbm") as f:
        f.write(cbm)
        f.flush()
        model.load_model(f.name)
    expected = model.predict(X, prediction_type="RawFormulaVal")
    got = TreeEnsemble.from_bytes(js).predict(X)
    return float(np.max(np.abs(expected - got))) if X.shape[0] else 0.0
