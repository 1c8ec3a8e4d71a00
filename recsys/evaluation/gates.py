"""Deployment gates: the served list against popularity on the same split, plus optional absolute thresholds."""

from __future__ import annotations

import math
from typing import Any

from recsys.pipeline_config import GatesConfig


def check_gates(metrics: dict[str, Any], gates: GatesConfig) -> dict[str, Any]:
    """{"passed": bool, "served": choice, "checks": [{"name", "value", "threshold", "passed"}]}; NaN fails.

    Default: the served list's nDCG@10 >= popularity's x (1 + min_ndcg_lift_over_popularity). The reference
    system's absolute thresholds (two-tower Recall/NDCG@100, ranker AUC / list nDCG) are checked when set.
    """
    tt, rk, pop = metrics["two_tower"], metrics["ranker"], metrics["popularity"]
    served = metrics.get("served") or {"choice": "two_tower", **tt}
    checks: list[tuple[str, float, float]] = []
    if gates.min_ndcg_lift_over_popularity is not None:
        threshold = pop["ndcg@10"] * (1.0 + gates.min_ndcg_lift_over_popularity)
        checks.append(("served_ndcg_at_10_vs_popularity", served["ndcg@10"], round(threshold, 6)))
    for name, value, threshold in (
        ("two_tower_recall_at_100", tt["recall@100"], gates.two_tower_recall_at_100),
        ("two_tower_ndcg_at_100", tt["ndcg@100"], gates.two_tower_ndcg_at_100),
        ("ranker_auc", rk["auc"], gates.ranker_auc),
        ("ranker_ndcg", rk["ndcg"], gates.ranker_ndcg),
    ):
        if threshold is not None:
            checks.append((name, value, threshold))
    if gates.min_recall_lift_over_popularity is not None:
        p = pop["recall@100"]
        lift = tt["recall@100"] / p if p > 0 else (math.inf if tt["recall@100"] > 0 else 0.0)
        checks.append(
            ("two_tower_recall_at_100_lift_over_popularity", lift, gates.min_recall_lift_over_popularity)
        )
    out = [
        {
            "name": name,
            "value": _clean(value),
            "threshold": threshold,
            "passed": bool(value == value and value >= threshold),
        }
        for name, value, threshold in checks
    ]
    return {"passed": all(c["passed"] for c in out), "served": served["choice"], "checks": out}


def _clean(value: float) -> float | None:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return None if value is None or math.isnan(value) else 1e308
    return round(float(value), 6)
