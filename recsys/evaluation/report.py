"""A self-contained HTML evaluation report (plots as inline base64 PNG) that opens in any browser."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _plots(metrics: dict[str, Any], scores: dict[str, np.ndarray]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, str] = {}
    curve = metrics["recall_curve"]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(curve["k"], curve["two_tower"], label="two-tower")
    ax.plot(curve["k"], curve["popularity"], label="popularity", linestyle="--")
    ax.set_xlabel("k")
    ax.set_ylabel("Recall@k")
    ax.set_title("Recall@k on held-out interactions")
    ax.grid(alpha=0.3)
    ax.legend()
    out["recall_curve"] = _png(fig)
    plt.close(fig)

    names = [n for n in ("recall@10", "recall@100", "ndcg@10", "ndcg@100") if n in metrics["two_tower"]]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    x = np.arange(len(names))
    ax.bar(x - 0.2, [metrics["two_tower"][n] for n in names], 0.4, label="two-tower")
    ax.bar(x + 0.2, [metrics["popularity"][n] for n in names], 0.4, label="popularity")
    ax.set_xticks(x, names)
    ax.set_title("Model vs popularity baseline")
    ax.legend()
    out["model_vs_popularity"] = _png(fig)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, name in zip(axes, ("ranker", "two_tower"), strict=True):
        pos, neg = scores[f"{name}_positive"], scores[f"{name}_negative"]
        both = np.concatenate([pos, neg]) if pos.size + neg.size else np.zeros(1)
        bins = np.linspace(float(both.min()), float(both.max()) + 1e-9, 40)
        ax.hist(neg, bins=bins, alpha=0.6, density=True, label="sampled negatives")
        ax.hist(pos, bins=bins, alpha=0.6, density=True, label="held-out positives")
        ax.set_title(f"{name.replace('_', '-')} score distribution")
        ax.legend()
    out["score_distributions"] = _png(fig)
    plt.close(fig)
    return out


def _table(rows: list[list[Any]], head: list[str]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "pass" if value else "FAIL"
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def render_report(metrics: dict[str, Any], scores: dict[str, np.ndarray]) -> str:
    """The report of one evaluation: gates, metric tables and plots."""
    plots = _plots(metrics, scores)
    tt, pop = metrics["two_tower"], metrics["popularity"]
    retrieval_rows = [[k, tt[k], pop[k], (tt[k] / pop[k]) if pop[k] else None] for k in tt]
    rk, base = metrics["ranker"], metrics["ranker_baselines"]
    ranking_rows = [
        ["ranker (served JSON form)", rk["auc"], rk["ndcg"], rk["ndcg@10"]],
        [
            "two-tower score only",
            base["two_tower"]["auc"],
            base["two_tower"]["ndcg"],
            base["two_tower"]["ndcg@10"],
        ],
        [
            "popularity only",
            base["popularity"]["auc"],
            base["popularity"]["ndcg"],
            base["popularity"]["ndcg@10"],
        ],
    ]
    gates = metrics["gates"]
    gate_rows = [[c["name"], c["value"], c["threshold"], c["passed"]] for c in gates["checks"]]
    verdict = "PASSED" if gates["passed"] else "FAILED"
    defs = "".join(
        f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in metrics["definitions"].items()
    )
    imgs = "".join(f'<figure><img alt="{html.escape(n)}" src="{src}"></figure>' for n, src in plots.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>recsys evaluation {html.escape(metrics["version"])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1.5rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.3rem 0.7rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.verdict {{ font-size: 1.3rem; font-weight: bold; color: {"#1a7f37" if gates["passed"] else "#cf222e"}; }}
figure {{ display: inline-block; margin: 0.5rem; }} img {{ max-width: 100%; }}
</style></head><body>
<h1>Evaluation of model version {html.escape(metrics["version"])}</h1>
<p class="verdict">Gates {verdict}</p>
<p>{metrics["users_evaluated"]} test users, {metrics["held_out_items"]} held-out videos,
catalogue of {metrics["catalog_size"]} videos.</p>
<h2>Gates</h2>{_table(gate_rows, ["gate", "value", "threshold", "result"])}
<h2>Retrieval: two-tower vs popularity</h2>
{_table(retrieval_rows, ["metric", "two-tower", "popularity", "lift"])}
<h2>Ranking of candidate lists</h2>
<p>{rk["lists"]} lists, {rk["rows"]} rows, {rk["positives"]} held-out positives.</p>
{_table(ranking_rows, ["scorer", "AUC", "nDCG (whole list)", "nDCG@10"])}
<h2>Plots</h2>{imgs}
<h2>Definitions</h2><ul>{defs}</ul>
</body></html>
"""
