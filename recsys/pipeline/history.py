"""Execution records: what ran, in which state each step is, and why a run failed.

One JSON document per execution (local runs and followed remote runs alike), kept under
`{home}/executions/{execution_id}.json` (plus `LATEST`) and `s3://{artifacts}/executions/{execution_id}.json`.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys.errors import NotFoundError, ValidationError
from recsys.pipeline.asl import ExecutionEvent, ExecutionOutcome

if TYPE_CHECKING:
    from recsys.config import Settings

EXECUTIONS_PREFIX = "executions/"
LATEST_FILE = "LATEST"
EXECUTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")  # Step Functions execution names


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def explain_cause(cause: str | None) -> str:
    """A Lambda error cause (`{"errorMessage", "errorType", ...}` JSON) as one readable line."""
    if not cause:
        return ""
    try:
        data = json.loads(cause)
    except (json.JSONDecodeError, TypeError):
        return str(cause)
    if isinstance(data, dict) and "errorMessage" in data:
        text = str(data["errorMessage"])
        return f"{text} (hint: {data['hint']})" if data.get("hint") else text
    if isinstance(data, dict) and "checks" in data:  # the GatesFailed cause: the gates object
        failing = [c for c in data["checks"] if not c.get("passed")]
        return "failing gates: " + "; ".join(describe_check(c) for c in failing)
    return str(cause)


def describe_check(check: dict[str, Any]) -> str:
    """`recall_at_100 = 0.05 (threshold 0.1)`."""
    value, threshold = check.get("value"), check.get("threshold")
    fmt = (lambda v: f"{v:.4g}") if isinstance(value, int | float) else str
    shown_threshold = f"{threshold:.4g}" if isinstance(threshold, int | float) else threshold
    return f"{check.get('name')} = {fmt(value)} (threshold {shown_threshold})"


class ExecutionRecord:
    """The history of one execution, updated from interpreter (or Step Functions) events."""

    def __init__(
        self, execution_id: str, env: str, mode: str, state_machine: str, execution_input: Any
    ) -> None:
        self._lock = threading.Lock()
        self.data: dict[str, Any] = {
            "execution_id": execution_id,
            "env": env,
            "mode": mode,
            "state_machine": state_machine,
            "status": "RUNNING",
            "started_at": now_iso(),
            "stopped_at": None,
            "input": execution_input,
            "output": None,
            "error": None,
            "cause": None,
            "failed_state": None,
            "failed_task": None,
            "states": {},
            "events": [],
        }

    @property
    def execution_id(self) -> str:
        return self.data["execution_id"]

    def on_event(self, event: ExecutionEvent) -> None:
        """Fold one event into the record."""
        with self._lock:
            self.data["events"].append(event.to_dict())
            if event.state is None:
                return
            if event.type == "ExecutionFailed":  # names the failing state, wherever it is nested
                for row in self.data["states"].values():
                    if row["state"] == event.state and row["status"] != "SUCCEEDED":
                        row.update(status="FAILED", error=event.details.get("error"))
                return
            key = f"{event.path}{event.state}"
            row = self.data["states"].setdefault(
                key, {"state": event.state, "path": event.path, "status": "PENDING", "attempts": 0}
            )
            stamp = event.to_dict()["timestamp"]
            if event.type == "StateEntered":
                row.update(status="RUNNING", entered_at=stamp, error=None)
                row["attempts"] = max(row["attempts"], 1)
            elif event.type == "StateExited":
                caught = event.details.get("caught_error")
                row.update(
                    status="FAILED" if caught else "SUCCEEDED",
                    exited_at=stamp,
                    duration_s=event.details.get("duration_s"),
                )
            elif event.type == "StateRetry":
                row.update(status="RETRYING", error=event.details.get("error"))
                row["attempts"] += 1
            elif event.type in ("TaskFailed", "ErrorCaught"):
                row.update(
                    status="FAILED", error=event.details.get("error"), cause=event.details.get("cause")
                )
                if event.type == "TaskFailed":
                    self.data["failed_task"] = event.state

    def finish(self, outcome: ExecutionOutcome) -> None:
        """Record how the execution ended."""
        with self._lock:
            self.data.update(
                status=outcome.status,
                stopped_at=now_iso(),
                output=outcome.output,
                error=outcome.error,
                cause=outcome.cause,
                failed_state=outcome.failed_state,
            )
            if outcome.status != "SUCCEEDED" and self.data["failed_task"] is None:
                self.data["failed_task"] = outcome.failed_state
            for row in self.data["states"].values():
                if row["status"] in ("RUNNING", "RETRYING"):
                    row["status"] = "ABORTED" if outcome.status != "SUCCEEDED" else row["status"]

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self.data, default=str))


def summarize(record: dict[str, Any]) -> dict[str, Any]:
    """The record without its event list, plus a one-line `explanation` of a failure."""
    out = {k: v for k, v in record.items() if k != "events"}
    out["states"] = list(record.get("states", {}).values())
    if record.get("error") == "GatesFailed":
        out["explanation"] = (
            f"the evaluation gates failed ({explain_cause(record.get('cause'))}); nothing was deployed"
        )
    elif record.get("status") not in ("RUNNING", "SUCCEEDED"):
        where = record.get("failed_task") or record.get("failed_state") or "?"
        out["explanation"] = f"failed in {where}: {record.get('error')}: {explain_cause(record.get('cause'))}"
    return out


def execution_row(record: dict[str, Any]) -> dict[str, Any]:
    """One line about an execution (for listings)."""
    output = record.get("output") or {}
    return {
        "execution_id": record.get("execution_id"),
        "status": record.get("status"),
        "started_at": record.get("started_at"),
        "stopped_at": record.get("stopped_at"),
        "version": output.get("version") if isinstance(output, dict) else None,
        "error": record.get("error"),
    }


class ExecutionStore:
    """Where execution records live: the local state directory and the artifacts bucket."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.directory = Path(settings.home) / "executions"

    def path(self, execution_id: str) -> Path:
        return self.directory / f"{execution_id}.json"

    def save_local(self, record: dict[str, Any]) -> Path:
        """Write the record (atomically) and mark it as the latest execution."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(record["execution_id"])
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
        tmp.replace(path)
        (self.directory / LATEST_FILE).write_text(record["execution_id"] + "\n", encoding="utf-8")
        return path

    def save_s3(self, record: dict[str, Any]) -> str:
        """Upload the record to s3://{artifacts}/executions/{id}.json; returns the key."""
        from recsys.storage import put_json

        key = f"{EXECUTIONS_PREFIX}{record['execution_id']}.json"
        put_json(self.settings, self.settings.names.bucket("artifacts"), key, record)
        return key

    def recent(self, limit: int = 10) -> list[dict[str, Any]]:
        """The most recent local executions, newest first: id, status, start, stop, version, error."""
        rows = []
        for path in self.directory.glob("*.json") if self.directory.is_dir() else []:
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            rows.append(execution_row(record))
        rows.sort(key=lambda r: r["started_at"] or "", reverse=True)
        return rows[:limit]

    def latest_id(self) -> str | None:
        try:
            return (self.directory / LATEST_FILE).read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def load(self, execution_id: str | None = None) -> dict[str, Any]:
        """A record by id (local file, else S3), or the latest local one."""
        execution_id = execution_id or self.latest_id()
        if execution_id and not EXECUTION_ID.match(execution_id):
            raise ValidationError(
                f"invalid execution id {execution_id!r}", hint="ids look like exec-20261124-193000-ab12cd"
            )
        if not execution_id:
            raise NotFoundError(
                f"no pipeline execution recorded under {self.directory}",
                hint="run `recsys pipeline run --env local` first, or pass --execution ID",
            )
        path = self.path(execution_id)
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
        from recsys.storage import get_json

        try:
            return get_json(
                self.settings,
                self.settings.names.bucket("artifacts"),
                f"{EXECUTIONS_PREFIX}{execution_id}.json",
            )
        except NotFoundError:
            raise NotFoundError(
                f"execution {execution_id!r} is not recorded locally or in s3",
                hint="see `recsys pipeline status` for the latest execution",
            ) from None
