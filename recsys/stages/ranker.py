"""Stage 2b: fit the candidate sources on the fit window and train the CatBoost ranker on the label window.

Input: {**preprocessing_output, "two_tower": two_tower_output}. The two-tower was trained on the fit window
(`window_fit`); here the item-item, recent-activity and popularity sources are fitted on the same window,
every label-window user's candidates are gathered (the union of the sources' top-N, `recsys.ranking.candidates`)
and labelled by whether the user took them in the label window, and the ranker learns which source to trust
from the per-source scores and ranks (features computed at the window's cutoff: point in time). The sources
are then fitted again on the whole training split for the evaluation stage.

Writes under s3://{models}/models/ranker/{version}/: ranker_model.cbm, ranker_model.json (numpy-evaluable),
ranker_features.json; and models/sources/{version}/sources_eval.npz. The JSON form is checked against
catboost before anything is written.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from recsys import artifacts as paths
from recsys.config import Settings
from recsys.errors import RecsysError, ValidationError
from recsys.ids import check_id
from recsys.pipeline_config import PipelineConfig
from recsys.ranking.candidates import CANDIDATE_FEATURES
from recsys.ranking.tree_ensemble import TreeEnsemble
from recsys.sources.fit import fit_sources, source_settings
from recsys.sources.lists import gather, labels_of
from recsys.stages.embeddings import load_embeddings
from recsys.stages.sources_common import relevant_rows, run_catalogue, sample_users, states_for
from recsys.stages.two_tower import load_inputs
from recsys.storage import put_bytes, put_json

PARITY_TOLERANCE = 1e-5
SOURCES_EVAL = "sources_eval.npz"


def run(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Fit the sources and train the ranker for the run in `event`."""
    from recsys.training.ranker import train_ranker

    started = time.perf_counter()
    version = check_id(event["version"], "version")
    config = PipelineConfig.model_validate(event["config"])
    if "window_fit" not in event["artifacts"]:
        raise ValidationError(
            "the preprocessing output has no ranker windows (window_fit, window_label)",
            hint="re-run the pipeline from preprocessing with this code version",
        )
    data = load_inputs(event, settings, "window_fit", "window_label", "train_interactions", "video_catalog")
    emb = load_embeddings(event["two_tower"], settings)
    has_ts = (event.get("stats") or {}).get("time_source", "timestamp") == "timestamp"
    window = (event.get("stats") or {}).get("window") or {}
    reference_ts = int(event.get("reference_ts") or 0)
    now_ts = float(window.get("cutoff_ts") or reference_ts)
    ids = data["video_catalog"].sort("video_id")["video_id"].to_list()
    cfg = config.sources
    cand_cfg = source_settings(cfg)

    fit = fit_sources(data["window_fit"], ids, cfg, has_ts)
    cat = run_catalogue(fit, data["video_catalog"], emb)
    states = states_for(data["window_fit"], ids, emb)
    label_users = sample_users(
        data["window_label"]["user_id"].unique().to_list(), cfg.max_ranker_users, cfg.seed
    )
    lists = gather(cat, states, relevant_rows(data["window_label"], ids, label_users), cand_cfg, now_ts)
    labels = labels_of(lists)
    keep = [i for i, y in enumerate(labels) if y.any() and not y.all()]
    if not keep:
        raise ValidationError(
            "no label-window user has a candidate they took: the ranker has nothing to learn from",
            hint="import more interactions, or raise config.sources.per_source",
        )
    X = np.vstack([lists.candidates[i].features for i in keep])
    y = np.concatenate([labels[i] for i in keep])
    groups = np.concatenate([np.full(labels[i].size, j, dtype=np.int64) for j, i in enumerate(keep)])
    if X.shape[0] > config.ranker.max_train_rows:  # whole users, in order
        cut = int(np.searchsorted(groups, groups[config.ranker.max_train_rows], side="left"))
        X, y, groups = X[:cut], y[:cut], groups[:cut]
    result = train_ranker(X, y, groups, config.ranker, CANDIDATE_FEATURES)

    parity = _parity(result.cbm, result.json, X[:5000])
    if parity > PARITY_TOLERANCE:
        raise RecsysError(f"JSON ranker differs from catboost by {parity:.2e}", hint="report this as a bug")

    # The sources the evaluation stage measures: fitted on the whole training split.
    train_fit = fit_sources(data["train_interactions"], ids, cfg, has_ts)
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
                "features": list(CANDIDATE_FEATURES),
                "candidates": cand_cfg.to_dict(),
                "loss": config.ranker.loss,
                "score": "raw formula value (higher = more relevant)",
                "reference_ts": reference_ts,
            },
        ),
        "sources_eval": put_bytes(
            settings,
            bucket,
            paths.sources_key(version, SOURCES_EVAL),
            train_fit.to_bytes(),
            "application/octet-stream",
        ),
    }
    return {
        "model": "ranker",
        "version": version,
        "models_bucket": bucket,
        "artifacts": artifacts,
        "train": {
            **result.info,
            "parity_max_abs_diff": parity,
            "window": window,
            "label_users": len(label_users),
            "users_with_a_positive_candidate": len(keep),
            "candidate_recall": round(
                sum(int(v.sum()) for v in labels) / max(1, sum(r.size for r in lists.relevant)), 4
            ),
            "sources_fit": fit.info,
            "sources_train": train_fit.info,
            "stage_seconds": round(time.perf_counter() - started, 3),
        },
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
