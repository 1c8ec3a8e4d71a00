"""What a pipeline run needs and what it tells: its input from the CLI's options, and its outcome explained.

The CLI renders these; the logic lives here so any other front end (an API, a notebook) gets the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys.errors import ErrorCode, RecsysError, ValidationError
from recsys.pipeline.history import explain_cause
from recsys.stages.preprocessing import DEFAULT_SOURCE

if TYPE_CHECKING:
    from recsys.config import Settings


def pipeline_input(
    users: int | None,
    videos: int | None,
    interactions: int | None,
    seed: int | None,
    dataset: str | None,
    config: Path | None,
    events: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The state machine input for a synthetic, an imported-dataset or an events run (`events`: the events
    source's options; sizes as the CLI options name them)."""
    synthetic = {"n_users": users, "n_videos": videos, "n_interactions": interactions, "seed": seed}
    if events is not None:
        given = [f"--{k.removeprefix('n_')}" for k, v in synthetic.items() if v is not None]
        if given or dataset is not None:
            raise ValidationError(
                f"--source events cannot be combined with {', '.join(given or ['--dataset'])}",
                hint="the events source adds the collected events to the production version's data",
            )
        source: dict[str, Any] = {"kind": "events", **events}
    elif dataset is not None:
        given = [f"--{k.removeprefix('n_')}" for k, v in synthetic.items() if v is not None]
        if given:
            raise ValidationError(
                f"--dataset cannot be combined with {', '.join(given)}",
                hint="use either --dataset NAME or the synthetic sizes",
            )
        source = {"kind": "dataset", "name": dataset}
    else:
        defaults = {k: DEFAULT_SOURCE[k] for k in ("n_users", "n_videos", "n_interactions")}
        source = {"kind": "synthetic"}
        for key, default in defaults.items():
            value = synthetic[key] if synthetic[key] is not None else default
            if value < 1:
                raise ValidationError(f"--{key.removeprefix('n_')} must be at least 1, got {value}")
            source[key] = value
        source["seed"] = DEFAULT_SOURCE["seed"] if seed is None else seed
    event: dict[str, Any] = {"source": source}
    if config is not None:
        try:
            overrides = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValidationError(f"cannot read the config overrides {config}: {exc}") from None
        if not isinstance(overrides, dict):
            raise ValidationError(f"{config} must hold a JSON object of config overrides")
        event["config"] = overrides
    return event


def download_report(settings: Settings, report_key: str | None, version: str) -> str | None:
    """Local runs: copy report.html next to the stack's state so it opens from disk."""
    if not report_key or not settings.is_local:
        return None
    from recsys.storage import get_bytes

    try:
        body = get_bytes(settings, settings.names.bucket("artifacts"), report_key)
    except RecsysError:
        return None
    path = Path(settings.home) / "reports" / version / Path(report_key).name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return str(path)


def failure_error(record: dict[str, Any], settings: Settings) -> RecsysError:
    """The error that explains a failed run: gates that failed (with the report) or the state that failed."""
    execution_id = record["execution_id"]
    hint = f"see `recsys pipeline status --env {settings.env} --execution {execution_id}`"
    if record.get("error") == "GatesFailed":
        evaluation: dict[str, Any] = {}
        for event in record.get("events", []):
            if event.get("state") == "Evaluation" and event.get("type") == "StateExited":
                evaluation = (event.get("output") or {}).get("evaluation") or {}
        version = evaluation.get("version") or "?"
        report = download_report(settings, evaluation.get("report_key"), version)
        if report is None and evaluation.get("report_key"):
            report = f"s3://{settings.names.bucket('artifacts')}/{evaluation['report_key']}"
        return RecsysError(
            f"version {version} failed the evaluation gates ({explain_cause(record.get('cause'))}); "
            "production is unchanged",
            hint=(f"report: {report}; " if report else "") + hint,
            code=ErrorCode.GATE_FAILED,
        )
    where = record.get("failed_task") or record.get("failed_state") or "?"
    return RecsysError(
        f"pipeline execution {execution_id} {record['status'].lower()} in {where}: "
        f"{record.get('error')}: {explain_cause(record.get('cause'))}",
        hint=hint,
    )


def success_summary(record: dict[str, Any], settings: Settings, report_path: str | None) -> dict[str, Any]:
    """What a successful run produced: version, metrics, gates, report, artifacts, deployment."""
    output = record.get("output") or {}
    version = output.get("version", "")
    artifacts_bucket = settings.names.bucket("artifacts")
    report_key = output.get("report_key")
    return {
        "execution_id": record["execution_id"],
        "status": record["status"],
        "version": version,
        "job_id": output.get("job_id"),
        "metrics": output.get("metrics"),
        "gates": output.get("gates"),
        "report": {
            "s3": f"s3://{artifacts_bucket}/{report_key}" if report_key else None,
            "path": report_path,
        },
        "metrics_s3": f"s3://{artifacts_bucket}/{output['metrics_key']}"
        if output.get("metrics_key")
        else None,
        "artifacts": output.get("artifacts"),
        "deployment": output.get("deployment"),
    }
