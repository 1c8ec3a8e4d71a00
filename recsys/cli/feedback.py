"""`recsys feedback merge | report`: served recommendations joined with the interactions that followed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import typer

from recsys.cli.common import EnvOption, JsonOption, emit, group, info, settings_for, table
from recsys.errors import ValidationError

feedback_app = group("The feedback merge: impressions joined with the interactions that followed them.")


@feedback_app.command("merge")
def merge(
    env: EnvOption = "local",
    day: Annotated[
        str | None,
        typer.Option("--date", help="Arrival day to merge, YYYY-MM-DD or 'today' (default: yesterday)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Merge one day's events with the recommendations they answer (what the daily Lambda does on AWS).

    Writes `s3://{data}/feedback/date=DAY/feedback.parquet`: one row per item shown, label 1 when the user
    engaged with it through that recommendation. Its impressions (label 0) become ranker negatives in the
    next `pipeline run --source events`.

    **Examples**

        recsys feedback merge --date today --env local

        recsys feedback merge --date 2026-11-24 --json
    """
    settings = settings_for(env)
    from recsys.feedback import merge_feedback

    if day is None:
        which = (datetime.now(UTC) - timedelta(days=1)).date()
    elif day == "today":
        which = datetime.now(UTC).date()
    else:
        try:
            which = date.fromisoformat(day)
        except ValueError:
            raise ValidationError(
                f"--date {day!r} is not YYYY-MM-DD", hint="e.g. --date 2026-11-24"
            ) from None
    result = merge_feedback(settings, which).to_dict()
    info(
        f"{result['date']}: {result['impressions']} impressions of {result['recommendations']} recommendations, "
        f"{result['positives']} engaged ({result['events']} events read)."
    )
    emit(result, lambda: None)


@feedback_app.command("report")
def report(env: EnvOption = "local", json_output: JsonOption = False) -> None:
    """Online click-through per variant (production, canary) and version, per model version and per source
    (model, cache, popular) over every merged day.

    Each variant line has its click-through with a 95% confidence interval (Wilson), the mean watch time of
    engaged items where events report one, and the share of the version's catalogue it showed (coverage).

    **Examples**

        recsys feedback report --env local

        recsys feedback report --json
    """
    settings = settings_for(env)
    from recsys.feedback import feedback_report

    data = feedback_report(settings)

    def render() -> None:
        if not data["days"]:
            info("No feedback merged yet: run `recsys feedback merge`.")
            return
        table(
            f"Variants ({len(data['days'])} day(s))",
            ["variant", "model_version", "impressions", "engaged", "ctr (95% CI)", "watch time", "coverage"],
            [
                (
                    r["variant"],
                    r["model_version"],
                    r["impressions"],
                    r["engaged"],
                    f"{r['ctr']:.2%} ({r['ctr_low']:.2%}-{r['ctr_high']:.2%})",
                    "-" if r["mean_watch_time"] is None else f"{r['mean_watch_time']:.1f} s",
                    "-" if r["coverage"] is None else f"{r['coverage']:.1%} of {r['catalogue_size']}",
                )
                for r in data["by_variant"]
            ],
        )
        for key, title in (("by_model_version", "model_version"), ("by_source", "source")):
            rows = [(r[title], r["impressions"], r["engaged"], f"{r['ctr']:.2%}") for r in data[key]]
            table(
                f"Click-through by {title} ({len(data['days'])} day(s))",
                [title, "impressions", "engaged", "ctr"],
                rows,
            )

    emit(data, render)
