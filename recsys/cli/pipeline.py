"""`recsys pipeline run | status`: the ML pipeline on the local stack or on AWS."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from recsys.cli.common import (
    OUTPUT,
    EnvOption,
    JobBars,
    JsonOption,
    emit,
    err_console,
    group,
    info,
    out_console,
    settings_for,
    table,
)
from recsys.errors import UnavailableError

pipeline_app = group("The ML pipeline: preprocessing, training, evaluation gates and deployment.")

_ICONS = {"RUNNING": "…", "SUCCEEDED": "✓", "FAILED": "✗", "RETRYING": "↻", "ABORTED": "-", "PENDING": " "}


class PipelineProgress:
    """A live table of the pipeline's states on stderr (one line per finished state when not a terminal),
    with progress bars of the jobs that report progress (training epochs and iterations)."""

    def __init__(self, enabled: bool) -> None:
        from contextlib import ExitStack

        self.enabled = enabled
        self.rows: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._live = None
        self._stack = ExitStack()
        if enabled and err_console.is_terminal:
            from rich.live import Live

            self._live = Live(self, console=err_console, refresh_per_second=6, transient=False)
        self.bars = JobBars(live=self._live is not None)

    def __enter__(self) -> PipelineProgress:
        from recsys.progress import listening

        if self.enabled:
            self._stack.enter_context(listening(self.bars))
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        if self._live is not None:
            self._live.stop()

    def __rich__(self) -> Any:
        if self.bars.active:
            from rich.console import Group

            return Group(self._table(), self.bars)
        return self._table()

    def _table(self) -> Table:
        t = Table(title="Pipeline", title_justify="left", show_edge=False)
        for col in ("state", "status", "time", "note"):
            t.add_column(col)
        with self._lock:
            rows = list(self.rows.values())
        now = time.monotonic()
        for row in rows:
            elapsed = row.get("duration") or (now - row["started"] if row["status"] == "RUNNING" else None)
            icon = _ICONS.get(row["status"], "")
            t.add_row(
                "  " * row["depth"] + row["state"],
                f"{icon} {row['status'].lower()}",
                f"{elapsed:.1f}s" if elapsed is not None else "",
                row.get("note", ""),
            )
        return t

    def on_event(self, event: Any) -> None:
        """Listener for interpreter (or followed Step Functions) events."""
        if not self.enabled or event.state is None:
            return
        path = getattr(event, "path", "") or ""
        key = path + event.state
        with self._lock:
            row = self.rows.setdefault(
                key,
                {
                    "state": event.state,
                    "depth": path.count("/") // 2,
                    "status": "PENDING",
                    "started": time.monotonic(),
                },
            )
            details = event.details or {}
            if event.type == "StateEntered":
                row.update(status="RUNNING", started=time.monotonic(), duration=None)
            elif event.type == "StateExited":
                row.update(
                    status="FAILED" if details.get("caught_error") else "SUCCEEDED",
                    duration=details.get("duration_s") or time.monotonic() - row["started"],
                )
            elif event.type == "StateRetry":
                row.update(status="RETRYING", note=f"{details.get('error')} (retry {details.get('attempt')})")
            elif event.type in ("TaskFailed", "ExecutionFailed"):
                row.update(status="FAILED", note=str(details.get("error")))
        if self._live is None:
            self._print_line(event, row)

    @staticmethod
    def _print_line(event: Any, row: dict[str, Any]) -> None:
        name = "  " * row["depth"] + row["state"]
        if event.type == "StateExited" and row["status"] == "SUCCEEDED":
            err_console.print(f"✓ {name} ({row['duration']:.1f}s)")
        elif event.type == "StateRetry":
            err_console.print(f"↻ {name}: {row.get('note')}")
        elif event.type == "TaskFailed":
            err_console.print(f"✗ {name}: {row.get('note')}")


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def metrics_table(metrics: dict[str, Any], title: str) -> Table:
    """Models as columns (two_tower, popularity, ranker, ...), metric names as rows."""
    models = {k: v for k, v in metrics.items() if isinstance(v, dict) and k != "gates"}
    columns = [m for m, values in models.items() if any(isinstance(x, int | float) for x in values.values())]
    names: list[str] = []
    for model in columns:
        names += [n for n, x in models[model].items() if isinstance(x, float) and n not in names]
    t = Table(title=title, title_justify="left")
    t.add_column("metric")
    for model in columns:
        t.add_column(model, justify="right")
    for name in names:
        t.add_row(name, *(_fmt(models[m].get(name, "")) for m in columns))
    return t


def _render_success(data: dict[str, Any]) -> None:
    out_console.print(metrics_table(data.get("metrics") or {}, f"Version {data.get('version')}: metrics"))
    gates = (data.get("gates") or {}).get("checks") or []
    if gates:
        g = Table(title="Gates", title_justify="left")
        for col in ("gate", "value", "threshold", "passed"):
            g.add_column(col)
        for check in gates:
            g.add_row(
                str(check.get("name")),
                _fmt(check.get("value")),
                _fmt(check.get("threshold")),
                "✓" if check.get("passed") else "✗",
            )
        out_console.print(g)
    report = data.get("report") or {}
    out_console.print(f"Report: {report.get('path') or report.get('s3')}")
    deployment = data.get("deployment") or {}
    if deployment:
        out_console.print(
            f"Deployed {deployment.get('version')} to production (previous: {deployment.get('previous_version')})"
        )


@pipeline_app.command("run")
def run(
    env: EnvOption = "local",
    users: Annotated[int | None, typer.Option("--users", help="Synthetic users (default 1000).")] = None,
    videos: Annotated[int | None, typer.Option("--videos", help="Synthetic videos (default 500).")] = None,
    interactions: Annotated[
        int | None, typer.Option("--interactions", help="Synthetic interactions (default 10000).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the synthetic data (default 42).")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Train on a dataset imported with `recsys data import`.")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source", help="events: the production version's data plus the events collected since."
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="--source events: events from this time.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="--source events: events before this time.")
    ] = None,
    base: Annotated[
        bool, typer.Option("--base/--no-base", help="--source events: add the events to the production data.")
    ] = True,
    config: Annotated[
        Path | None, typer.Option("--config", help="JSON file of pipeline config overrides.", exists=True)
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="AWS: wait for the execution to end.")
    ] = True,
    json_output: JsonOption = False,
) -> None:
    """Run the pipeline: preprocessing, training (two-tower, ranker), evaluation, and deployment when the gates pass.

    `--env local` executes the state machine definition on the local stack; other environments start the
    deployed Step Functions state machine and follow it. Exits with code 7 (gate_failed) when the gates
    fail, and non-zero with the failed state when a stage fails; production is unchanged in both cases.

    **Examples**

        recsys pipeline run --env local

        recsys pipeline run --env local --users 300 --videos 200 --interactions 5000 --seed 7 --json

        recsys data import --interactions events.csv --name my-events && recsys pipeline run --dataset my-events

        recsys pipeline run --env dev --no-follow

        recsys pipeline run --source events --since 2026-11-01T00:00:00Z
    """
    settings = settings_for(env)
    from recsys.pipeline.results import download_report, failure_error, pipeline_input, success_summary

    events = _events_options(source, since, until, base)
    event = pipeline_input(users, videos, interactions, seed, dataset, config, events)
    if settings.is_local:
        record = _run_local(settings, event)
    else:
        record = _run_remote(settings, event, follow)
        if record is None:
            return
    if record["status"] != "SUCCEEDED":
        raise failure_error(record, settings)
    output = record.get("output") or {}
    report_path = download_report(settings, output.get("report_key"), output.get("version", ""))
    data = success_summary(record, settings, report_path)
    if events is not None and data.get("job_id"):
        data["source"] = _resolved_source(settings, data["job_id"])
        info(
            f"Trained on {data['source'].get('events', 0)} collected events"
            f" and {data['source'].get('base_interactions', 0)} base interactions."
        )
    info(f"Execution {record['execution_id']} succeeded: version {data['version']} is in production.")
    emit(data, lambda: _render_success(data))


def _resolved_source(settings: Any, job_id: str) -> dict[str, Any]:
    from recsys import artifacts
    from recsys.data.events_source import SOURCE_FILE
    from recsys.storage import get_json

    return get_json(
        settings, settings.names.bucket("artifacts"), artifacts.preprocessing_key(job_id, SOURCE_FILE)
    )


def _events_options(
    source: str | None, since: str | None, until: str | None, base: bool
) -> dict[str, Any] | None:
    from recsys.errors import ValidationError

    if source is None:
        if since or until or not base:
            raise ValidationError("--since, --until and --no-base need --source events")
        return None
    if source != "events":
        raise ValidationError(f"unknown --source {source!r}", hint="--source events (or --dataset NAME)")
    from recsys.cli.events import parse_time

    options: dict[str, Any] = {}
    if since:
        options["since"] = parse_time(since)
    if until:
        options["until"] = parse_time(until)
    if not base:
        options["base"] = None
    return options


def _run_local(settings: Any, event: dict[str, Any]) -> dict[str, Any]:
    from recsys.pipeline.runner import new_execution_id, run_local

    _require_local_stack(settings)
    execution_id = new_execution_id()
    info(f"Running the pipeline locally (execution {execution_id})")
    with PipelineProgress(enabled=not OUTPUT.json) as progress:
        result = run_local(event, settings, listener=progress.on_event, execution_id=execution_id)
    return result.record


def _require_local_stack(settings: Any) -> None:
    from recsys.local.stack import LocalStack

    if not LocalStack(settings).aws_healthy():
        raise UnavailableError(
            f"the local stack does not answer at {settings.aws_endpoint_url}",
            hint="start it: recsys local up",
        )


def _run_remote(settings: Any, event: dict[str, Any], follow: bool) -> dict[str, Any] | None:
    from recsys.pipeline import remote
    from recsys.pipeline.history import ExecutionStore
    from recsys.pipeline.runner import new_execution_id

    execution_id = new_execution_id()
    arn = remote.start(settings, event, execution_id)
    info(f"Started {arn}")
    if not follow:
        emit({"execution_id": execution_id, "execution_arn": arn, "status": "RUNNING"})
        return None
    with PipelineProgress(enabled=not OUTPUT.json) as progress:
        record = remote.follow(settings, execution_id, listener=progress.on_event)
    ExecutionStore(settings).save_local(record)
    return record


def _render_status(summary: dict[str, Any]) -> None:
    out_console.print(
        f"Execution [bold]{summary['execution_id']}[/] ({summary.get('mode')}, env {summary.get('env')}): "
        f"[bold]{summary['status']}[/]  started {summary.get('started_at')}  stopped {summary.get('stopped_at') or '-'}"
    )
    t = Table(show_edge=False)
    for col in ("state", "status", "duration", "attempts", "error"):
        t.add_column(col)
    for row in summary.get("states", []):
        depth = (row.get("path") or "").count("/") // 2
        duration = row.get("duration_s")
        t.add_row(
            "  " * depth + row["state"],
            f"{_ICONS.get(row['status'], '')} {row['status'].lower()}",
            f"{duration:.1f}s" if isinstance(duration, int | float) else "",
            str(row.get("attempts") or ""),
            str(row.get("error") or ""),
        )
    out_console.print(t)
    if summary.get("explanation"):
        out_console.print(f"[bold red]{summary['explanation']}[/]")
    output = summary.get("output") or {}
    if output.get("version"):
        out_console.print(f"Version {output['version']}; report: {output.get('report_key')}")


@pipeline_app.command("status")
def status(
    env: EnvOption = "local",
    execution: Annotated[
        str | None, typer.Option("--execution", help="Execution id (default: the latest).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Show a pipeline execution: its status, each state, and why it failed.

    Locally the latest run recorded under the stack's state directory (or s3://{artifacts}/executions/);
    on AWS the deployed state machine's execution and its history.

    **Examples**

        recsys pipeline status

        recsys pipeline status --execution exec-20261124-193000-ab12cd --json

        recsys pipeline status --env dev
    """
    from recsys.pipeline.history import ExecutionStore, summarize

    settings = settings_for(env)
    if settings.is_local:
        record = ExecutionStore(settings).load(execution)
    else:
        from recsys.pipeline import remote

        record = remote.describe(settings, execution or remote.latest_execution_id(settings))
    summary = summarize(record)
    emit(summary, lambda: _render_status(summary))


@pipeline_app.command("list")
def list_executions(
    env: EnvOption = "local",
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many executions.")] = 10,
    json_output: JsonOption = False,
) -> None:
    """List the most recent pipeline executions, newest first.

    **Examples**

        recsys pipeline list

        recsys pipeline list --env dev --limit 5 --json
    """
    from recsys.pipeline.history import ExecutionStore

    settings = settings_for(env)
    if settings.is_local:
        rows = ExecutionStore(settings).recent(limit)
    else:
        from recsys.pipeline import remote

        rows = remote.recent_executions(settings, limit)
    emit(
        rows,
        lambda: table(
            "Pipeline executions",
            ["execution", "status", "started (UTC)", "version", "error"],
            [
                (
                    r["execution_id"],
                    r["status"],
                    (r["started_at"] or "")[:19].replace("T", " "),
                    r["version"],
                    r["error"],
                )
                for r in rows
            ],
        ),
    )
