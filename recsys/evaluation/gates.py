"""Deployment gates: thresholds from configuration checked against the evaluation metrics."""

from __future__ import annotations

import math
from typing import Any

from recsys.pipeline_config import GatesConfig


def check_gates(metrics: dict[str, Any], gates: GatesConfig) -> dict[str, Any]:
    """{"passed": bool, "checks": [{"name", "value", "threshold", "passed"}]}; a NaN metric fails."""
    tt, rk = metrics["two_tower"], metrics["ranker"]
    checks = [
        ("two_tower_recall_at_100", tt["recall@100"], gates.two_tower_recall_at_100),
        ("two_tower_ndcg_at_100", tt["ndcg@100"], gates.two_tower_ndcg_at_100),
        ("ranker_auc", rk["auc"], gates.ranker_auc),
        ("ranker_ndcg", rk["ndcg"], gates.ranker_ndcg),
    ]
    if gates.min_recall_lift_over_popularity is not None:
        pop = metrics["popularity"]["recall@100"]
        lift = tt["recall@100"] / pop if pop > 0 else (math.inf if tt["recall@100"] > 0 else 0.0)
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
    return {"passed": all(c["passed"] for c in out), "checks": out}


def _clean(value: float) -> float | None:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return None if value is None or math.isnan(value) else 1e308
    return round(float(value), 6)
