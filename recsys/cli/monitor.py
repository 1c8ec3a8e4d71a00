"""`recsys monitor run | report`: serving quality and drift over time (`recsys.quality_monitor`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from recsys.cli.common import EnvOption, JsonOption, emit, group, info, settings_for, table

monitor_app = group(
    "Serving quality and drift over time: coverage, concentration, cold start, click-through."
)


@monitor_app.command("run")
def run(
    env: EnvOption = "local",
    hours: Annotated[int, typer.Option(min=1, max=24 * 30, help="Length of the window (hours).")] = 24,
    json_output: JsonOption = False,
) -> None:
    """Measure the last window against the one before it and add the point to the time series.

    The daily schedule and every deployment run the same on AWS (the quality_monitor function).

    **Examples**

        recsys monitor run

        recsys monitor run --hours 6 --json
    """
    from recsys.quality_monitor import METRICS
    from recsys.quality_monitor import run as run_monitor

    point = run_monitor(settings_for(env), now_s=time.time(), window_s=hours * 3600)
    data = point.to_dict()
    info(f"{point.responses} responses in the last {hours} h; the point is in the time series.")
    emit(
        data,
        lambda: table(
            "Quality",
            ["metric", "value"],
            [(m, "-" if data[m] is None else f"{data[m]:.4f}") for m in METRICS],
        ),
    )


@monitor_app.command("report")
def report(
    env: EnvOption = "local",
    days: Annotated[int, typer.Option(min=1, max=455, help="How many days back.")] = 30,
    output: Annotated[Path, typer.Option(help="Where to write the HTML page.")] = Path("quality-report.html"),
    json_output: JsonOption = False,
) -> None:
    """Chart every quality and drift metric of the last DAYS days in one HTML page.

    **Examples**

        recsys monitor report --output report.html

        recsys monitor report --env prod --days 90 --json
    """
    from recsys.quality_monitor import history
    from recsys.quality_report import render

    settings = settings_for(env)
    now = time.time()
    series = history(settings, now_s=now, days=days)
    output.write_text(render(settings.env, series, now), encoding="utf-8")
    info(f"Wrote {output} ({sum(len(v) for v in series.values())} points).")
    emit({"path": str(output), "points": {k: len(v) for k, v in series.items()}}, lambda: None)
