"""`recsys monitor report`: the quality and drift time series as one self-contained HTML page (inline SVG)."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from recsys.quality_monitor import METRICS

WIDTH, HEIGHT, PAD = 560, 150, 28
LABELS = {
    "catalog_coverage": "Catalogue coverage of served items",
    "gini_served": "Concentration of served items (Gini)",
    "cold_start_share": "Share of cold-start answers",
    "fallback_share": "Share of items filled from popular",
    "ctr": "Online click-through",
    "event_mix_drift": "Drift of the event mix (Jensen-Shannon distance)",
    "activity_drift": "Events per active user vs the previous window",
}


def _chart(points: list[tuple[float, float]]) -> str:
    if not points:
        return '<p class="empty">No points yet: run <code>recsys monitor run</code> or wait for the daily job.</p>'
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(0.0, min(ys)), max(ys) if max(ys) > 0 else 1.0

    def sx(x: float) -> float:
        return PAD + (x - x0) / (x1 - x0) * (WIDTH - 2 * PAD)

    def sy(y: float) -> float:
        return HEIGHT - PAD - (y - y0) / ((y1 - y0) or 1) * (HEIGHT - 2 * PAD)

    path = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(points))
    dots = "".join(
        f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3"><title>{_day(x)}: {y:.4f}</title></circle>'
        for x, y in points
    )
    return (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="time series, last value {ys[-1]:.4f}">'
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" class="axis"/>'
        f'<text x="{PAD}" y="{HEIGHT - 8}">{_day(x0)}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" text-anchor="end">{_day(x1)}</text>'
        f'<text x="4" y="{sy(y1) + 4:.0f}">{y1:.3g}</text><text x="4" y="{sy(y0):.0f}">{y0:.3g}</text>'
        f'<path d="{path}"/>{dots}</svg>'
    )


def _day(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M")


def render(env: str, series: dict[str, list[tuple[float, float]]], generated_at: float) -> str:
    """The page: one chart per metric with its latest value."""
    sections = []
    for name in METRICS:
        points = series.get(name) or []
        last = f"{points[-1][1]:.4f}" if points else "-"
        sections.append(
            f"<section><h2>{html.escape(LABELS[name])} <small>{name} · latest {last}</small></h2>"
            f"{_chart(points)}</section>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>recsys quality ({html.escape(env)})</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 620px; color: #1d1d1f; }}
h1 {{ font-size: 1.4rem; }} h2 {{ font-size: 1rem; margin: 1.5rem 0 .3rem; }}
small {{ color: #555; font-weight: normal; }} svg {{ width: 100%; height: auto; }}
path {{ fill: none; stroke: #0a58ca; stroke-width: 2; }} circle {{ fill: #0a58ca; }}
.axis {{ stroke: #999; }} text {{ font-size: 11px; fill: #444; }} .empty {{ color: #555; }}
</style></head><body>
<h1>Serving quality and drift: {html.escape(env)}</h1>
<p>Generated {_day(generated_at)} UTC. One point per daily run and per deployment
(<code>recsys monitor run</code>); CloudWatch namespace <code>RecSys/Quality</code>.</p>
{"".join(sections)}
</body></html>
"""
