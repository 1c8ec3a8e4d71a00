"""Stage 3: evaluate the ranked list, each candidate source and popularity; choose what to serve; check gates.

Input: {"preprocessing", "two_tower", "ranker"}. The sources fitted on the training split (`sources_eval.npz`)
and the two-tower of the fit window give every test user's candidates (`recsys.ranking.candidates`, the serving
code); the ranker (its JSON export, as served) orders them. Lists: the ranked list, each source alone, and
popularity, on the same users and exclusions (the videos the user saw in the train period). The served choice
is the list with the best nDCG@10: the ranked list or the best single source. Writes
s3://{artifacts}/evaluation/{version}/metrics.json and report.html.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from recsys.artifacts import evaluation_prefix
from recsys.config import Settings
from recsys.errors import ValidationError
from recsys.evaluation.candidates import list_metrics, segment_metrics
from recsys.evaluation.gates import check_gates
from recsys.evaluation.metrics import auc, grouped_ndcg
from recsys.ids import check_id
from recsys.pipeline_config import PipelineConfig
from recsys.ranking.candidates import RANKED, SOURCES, SourceSettings
from recsys.ranking.tree_ensemble import TreeEnsemble
from recsys.sources.fit import FittedSources
from recsys.sources.lists import gather, labels_of, make_lists
from recsys.stages.embeddings import load_embeddings
from recsys.stages.sources_common import relevant_rows, run_catalogue, sample_users, states_for
from recsys.stages.two_tower import load_inputs
from recsys.storage import get_bytes, get_json, put_bytes, put_json

DEPTH = 100


def run(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Compute the metrics, choose the served list, check the gates, and write metrics.json + report.html."""
    from recsys.evaluation.report import render_report

    started = time.perf_counter()
    pre, tt, rk = event["preprocessing"], event["two_tower"], event["ranker"]
    version = check_id(pre["version"], "version")
    config = PipelineConfig.model_validate(pre["config"])
    ev = config.evaluation
    data = load_inputs(pre, settings, "test_interactions", "seen", "train_interactions", "video_catalog")
    if "sources_eval" not in rk["artifacts"]:
        raise ValidationError("the ranker output has no sources_eval", hint="re-run the pipeline")
    emb = load_embeddings(tt, settings)
    models = rk.get("models_bucket") or settings.names.bucket("models")
    fitted = FittedSources.from_bytes(get_bytes(settings, models, rk["artifacts"]["sources_eval"]))
    ranker = TreeEnsemble.from_bytes(get_bytes(settings, models, rk["artifacts"]["ranker_model_json"]))
    cand_cfg = SourceSettings(**get_json(settings, models, rk["artifacts"]["ranker_features"])["candidates"])
    ids = fitted.video_ids.tolist()
    cat = run_catalogue(fitted, data["video_catalog"], emb)
    states = states_for(data["train_interactions"], ids, emb, data["seen"])
    test_users = sample_users(data["test_interactions"]["user_id"].unique().to_list(), ev.max_users, ev.seed)
    relevant = relevant_rows(data["test_interactions"], ids, test_users)
    lists = gather(cat, states, relevant, cand_cfg, float(pre.get("reference_ts") or 0))
    ranker_scores = [ranker.predict(c.features) if len(c) else np.zeros(0) for c in lists.candidates]
    make_lists(lists, ranker_scores, DEPTH)
    n_items = len(ids)
    blocks = {name: list_metrics(recs, lists.relevant, n_items) for name, recs in lists.lists.items()}
    served = max([RANKED, *SOURCES], key=lambda n: (blocks[n]["ndcg@10"], n == RANKED))
    train_items = np.array([states[u].history.size if u in states else 0 for u in lists.users])
    segments = segment_metrics(lists.lists, lists.relevant, train_items, fitted.popularity)

    labels = labels_of(lists)
    y = np.concatenate(labels) if labels else np.zeros(0)
    groups = np.concatenate([np.full(v.size, i) for i, v in enumerate(labels)]) if labels else np.zeros(0)
    flat = np.concatenate(ranker_scores) if ranker_scores else np.zeros(0)
    tt_flat = np.concatenate([c.scores["two_tower"] for c in lists.candidates]) if labels else np.zeros(0)
    pop_flat = np.concatenate([c.scores["popularity"] for c in lists.candidates]) if labels else np.zeros(0)

    def ranking_block(scores: np.ndarray) -> dict[str, float]:
        return {
            "auc": round(auc(y, scores), 6),
            "ndcg": round(grouped_ndcg(groups, y, scores), 6),
            "ndcg@10": round(grouped_ndcg(groups, y, scores, k=10), 6),
        }

    metrics: dict[str, Any] = {
        "version": version,
        "job_id": pre.get("job_id"),
        "definitions": {
            "lists": "every test user's candidates (the union of the sources' top "
            f"{cand_cfg.per_source}, videos seen in the train period excluded) ordered by the ranker "
            "(final), by one source's score (that source alone) or by popularity",
            "ndcg@k": "binary-relevance nDCG over the top k (1/log2(rank+2) discounts), mean over test users",
            "recall@k": "held-out videos in the top k / held-out videos, mean over test users",
            "hit_rate@10": "share of users with a held-out video in their top 10",
            "map@10": "mean average precision over the top 10 (normalised by min(held-out, 10))",
            "served": "the list with the best nDCG@10 (the ranked list wins ties): what deployment serves",
            "ranker.auc": "ROC AUC over every candidate row (held-out videos among the candidates vs the rest)",
        },
        "protocol": {
            "split": config.split.strategy,
            "test_share": config.split.test_share,
            "n_test": config.split.n_test,
            "window": (pre.get("stats") or {}).get("window"),
        },
        "users_evaluated": len(lists.users),
        "held_out_items": int(sum(r.size for r in lists.relevant)),
        "catalog_size": n_items,
        "final": blocks[RANKED],
        "sources": {src: blocks[src] for src in SOURCES},
        "two_tower": blocks["two_tower"],
        "popularity": blocks["popularity"],
        "served": {"choice": served, **blocks[served]},
        "segments": segments,
        "ranker": {
            **ranking_block(flat),
            "rows": int(y.size),
            "lists": len(labels),
            "positives": int(y.sum()),
            "candidate_recall": round(float(y.sum()) / max(1, sum(r.size for r in lists.relevant)), 6),
        },
        "ranker_baselines": {"two_tower": ranking_block(tt_flat), "popularity": ranking_block(pop_flat)},
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
            "ranker_positive": flat[y == 1],
            "ranker_negative": flat[y == 0],
            "two_tower_positive": tt_flat[y == 1],
            "two_tower_negative": tt_flat[y == 0],
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
        k: v
        for k, v in metrics.items()
        if k not in ("definitions", "train", "preprocessing", "segments", "ranker_baselines", "protocol")
    }
    return {
        "version": version,
        "metrics": summary,
        "gates": gates,
        "metrics_key": metrics_key,
        "report_key": report_key,
        "artifacts_bucket": bucket,
    }
