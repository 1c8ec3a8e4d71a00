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
    lists = _lists(metrics)
    names = [n for n in ("ndcg@10", "recall@10", "recall@100", "map@10") if n in metrics["final"]]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    x = np.arange(len(names))
    width = 0.8 / max(1, len(lists))
    for j, (label, block) in enumerate(lists):
        ax.bar(x - 0.4 + width * (j + 0.5), [block[n] for n in names], width, label=label)
    ax.set_xticks(x, names)
    ax.set_title("Ranked list, each source alone, popularity")
    ax.legend(fontsize=8)
    out["lists_vs_popularity"] = _png(fig)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, name in zip(axes, ("ranker", "two_tower"), strict=True):
        pos, neg = scores[f"{name}_positive"], scores[f"{name}_negative"]
        both = np.concatenate([pos, neg]) if pos.size + neg.size else np.zeros(1)
        bins = np.linspace(float(both.min()), float(both.max()) + 1e-9, 40)
        ax.hist(neg, bins=bins, alpha=0.6, density=True, label="other candidates")
        ax.hist(pos, bins=bins, alpha=0.6, density=True, label="held-out candidates")
        ax.set_title(f"{name.replace('_', '-')} score distribution")
        ax.legend()
    out["score_distributions"] = _png(fig)
    plt.close(fig)
    return out


def _lists(metrics: dict[str, Any]) -> list[tuple[str, dict[str, float]]]:
    """(label, metrics) of the ranked list, each source alone and popularity."""
    out = [("ranked list (final)", metrics["final"])]
    out += [(f"{name.replace('_', '-')} alone", block) for name, block in metrics["sources"].items()]
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
    pop = metrics["popularity"]
    names = list(metrics["final"])
    list_rows = [
        [
            label,
            *[block.get(n) for n in names],
            (block["ndcg@10"] / pop["ndcg@10"] - 1) if pop["ndcg@10"] else None,
        ]
        for label, block in _lists(metrics)
    ]
    seg_rows = []
    for seg, values in metrics.get("segments", {}).items():
        size = ", ".join(f"{k} {v}" for k, v in values.items() if not isinstance(v, dict))
        for name, block in values.items():
            if isinstance(block, dict):
                seg_rows.append([f"{seg} ({size})", name, block.get("ndcg@10"), block.get("recall@100")])
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
<p>Served: <b>{html.escape(str(metrics["served"]["choice"]))}</b> (the list with the best nDCG@10: the ranked
list or the best single source).</p>
<h2>Lists: ranked, each source alone, popularity</h2>
{_table(list_rows, ["list", *names, "nDCG@10 lift over popularity"])}
<h2>Segments</h2>
{_table(seg_rows, ["segment", "list", "nDCG@10", "Recall@100"])}
<h2>Ranking of the candidates</h2>
<p>{rk["lists"]} users, {rk["rows"]} candidates, {rk["positives"]} held-out videos among them
(candidate recall {_fmt(rk.get("candidate_recall"))}).</p>
{_table(ranking_rows, ["scorer", "AUC", "nDCG (whole list)", "nDCG@10"])}
<h2>Plots</h2>{imgs}
<h2>Definitions</h2><ul>{defs}</ul>
</body></html>
"""
