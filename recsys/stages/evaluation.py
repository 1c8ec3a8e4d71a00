"""Stage 3: evaluate the run's models against the popularity baseline, check the gates, write the report.

Input: {"preprocessing", "two_tower", "ranker"}. Writes s3://{artifacts}/evaluation/{version}/metrics.json
and report.html. Output: {"version", "metrics", "gates", "metrics_key", "report_key"}. The ranker is
evaluated in its serving form (the JSON export run by numpy), so the gates judge what will be served.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import polars as pl

from recsys.artifacts import evaluation_prefix
from recsys.config import Settings
from recsys.data import schema as s
from recsys.data.ranker_rows import feature_matrix, two_tower_scores
from recsys.evaluation.gates import check_gates
from recsys.evaluation.offline import evaluate_ranking, evaluate_retrieval
from recsys.ids import check_id
from recsys.pipeline_config import PipelineConfig
from recsys.ranking.tree_ensemble import TreeEnsemble
from recsys.stages.embeddings import load_embeddings
from recsys.stages.two_tower import load_inputs
from recsys.storage import get_bytes, put_bytes, put_json


def run(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Compute the metrics, check the gates, and write metrics.json + report.html."""
    from recsys.evaluation.report import render_report

    started = time.perf_counter()
    pre, tt, rk = event["preprocessing"], event["two_tower"], event["ranker"]
    version = check_id(pre["version"], "version")
    config = PipelineConfig.model_validate(pre["config"])
    ev = config.evaluation
    data = load_inputs(
        pre,
        settings,
        "test_interactions",
        "seen",
        "video_catalog",
        "user_features",
        "video_features",
        "ranker_test",
    )
    emb = load_embeddings(tt, settings)
    catalog: pl.DataFrame = data["video_catalog"]
    pop_by_id = dict(zip(catalog[s.VIDEO_ID].to_list(), catalog[s.POPULARITY].to_list(), strict=True))
    popularity = np.array([pop_by_id.get(v, 0.0) for v in emb["video_ids"].tolist()], dtype=np.float64)
    retrieval = evaluate_retrieval(
        data["test_interactions"], data["seen"], emb, popularity, ev.ks, ev.curve_max_k, ev.max_users, ev.seed
    )

    rows: pl.DataFrame = data["ranker_test"].sort(s.USER_ID, maintain_order=True)
    tt_scores = two_tower_scores(
        rows, emb["user_ids"], emb["user_vectors"], emb["video_ids"], emb["video_vectors"]
    )
    X = feature_matrix(
        rows, data["user_features"], data["video_features"], tt_scores, int(pre.get("reference_ts") or 0)
    )
    models_bucket = rk.get("models_bucket") or settings.names.bucket("models")
    ranker = TreeEnsemble.from_bytes(get_bytes(settings, models_bucket, rk["artifacts"]["ranker_model_json"]))
    ranker_scores = ranker.predict(X)
    labels = rows[s.LABEL].to_numpy().astype(np.int64)
    groups = rows[s.USER_ID].rank("dense").to_numpy()
    pop_scores = np.array([pop_by_id.get(v, 0.0) for v in rows[s.VIDEO_ID].to_list()])
    ranking = evaluate_ranking(groups, labels, ranker_scores, tt_scores, pop_scores)

    metrics: dict[str, Any] = {
        "version": version,
        "job_id": pre.get("job_id"),
        "definitions": {
            "recall@k": "held-out videos in the top k / held-out videos, mean over test users; "
            "the catalogue minus the user's train-period videos is ranked",
            "ndcg@k": "binary-relevance nDCG over the same top k (1/log2(rank+2) discounts), mean over users",
            "ranker.auc": "ROC AUC over all candidate rows (held-out positives vs sampled negatives)",
            "ranker.ndcg": "nDCG of each test user's whole candidate list as ordered by the ranker, mean over users",
        },
        "users_evaluated": retrieval["users_evaluated"],
        "held_out_items": retrieval["held_out_items"],
        "catalog_size": retrieval["catalog_size"],
        "two_tower": retrieval["two_tower"],
        "popularity": retrieval["popularity"],
        **ranking,
        "recall_curve": retrieval["recall_curve"],
        "train": {"two_tower": tt.get("train", {}), "ranker": rk.get("train", {})},
        "preprocessing": pre.get("stats", {}),
    }
    gates = check_gates(metrics, config.gates)
    metrics["gates"] = gates
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    bucket = settings.names.bucket("artifacts")
    metrics_key = put_json(settings, bucket, evaluation_prefix(version) + "metrics.json", metrics)
    html = render_report(
        metrics,
        {
            "ranker_positive": ranker_scores[labels == 1],
            "ranker_negative": ranker_scores[labels == 0],
            "two_tower_positive": tt_scores[labels == 1],
            "two_tower_negative": tt_scores[labels == 0],
        },
    )
    report_key = put_bytes(
        settings,
        bucket,
        evaluation_prefix(version) + "report.html",
        html.encode(),
        "text/html; charset=utf-8",
    )
    summary = {
        k: v for k, v in metrics.items() if k not in ("recall_curve", "definitions", "train", "preprocessing")
    }
    return {
        "version": version,
        "metrics": summary,
        "gates": gates,
        "metrics_key": metrics_key,
        "report_key": report_key,
        "artifacts_bucket": bucket,
    }
