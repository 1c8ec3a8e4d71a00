"""The deployed pipeline: start the Step Functions state machine, follow it, explain its executions.

The state machine ARN comes from the cached Terraform outputs (`recsys outputs --env ENV`) when present, else it is
built from the catalogue name, the caller's account (`sts get-caller-identity`) and the region. Step Functions'
history events are folded into the same `ExecutionRecord` as a local run, so `recsys pipeline status` shows
both the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from recsys.aws import client
from recsys.errors import NotFoundError, UnavailableError
from recsys.pipeline.asl import ExecutionEvent, ExecutionOutcome
from recsys.pipeline.history import ExecutionRecord

if TYPE_CHECKING:
    from recsys.config import Settings

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
DEFAULT_POLL_S = 5.0


def state_machine_arn(settings: Settings) -> str:
    """The deployed pipeline's ARN: the caller's account and region, and the state machine's deployed name."""
    try:
        account = client("sts", settings).get_caller_identity()["Account"]
    except ClientError as exc:
        raise UnavailableError(
            f"cannot resolve the AWS account: {exc.response.get('Error', {}).get('Message', exc)}",
            hint="configure AWS credentials (aws configure / AWS_PROFILE)",
        ) from None
    name = settings.names.state_machines["ml_pipeline"]
    return f"arn:aws:states:{settings.region}:{account}:stateMachine:{name}"


def execution_arn(settings: Settings, execution_id: str) -> str:
    """The ARN of execution `execution_id` (a name or an ARN) of the pipeline."""
    if execution_id.startswith("arn:"):
        return execution_id
    machine = state_machine_arn(settings)
    return machine.replace(":stateMachine:", ":execution:") + f":{execution_id}"


def start(settings: Settings, execution_input: dict[str, Any], execution_id: str) -> str:
    """Start an execution named `execution_id`; returns its ARN."""
    arn = state_machine_arn(settings)
    try:
        response = client("stepfunctions", settings).start_execution(
            stateMachineArn=arn, name=execution_id, input=json.dumps(execution_input)
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "StateMachineDoesNotExist":
            raise NotFoundError(
                f"state machine {arn} does not exist", hint=f"deploy it: make tf-apply ENV={settings.env}"
            ) from None
        raise UnavailableError(
            f"cannot start the pipeline: {code or exc}", hint="check credentials and IAM"
        ) from None
    return str(response["executionArn"])


_ENTERED = "StateEntered"
_EXITED = "StateExited"


def history_events(settings: Settings, arn: str) -> list[ExecutionEvent]:
    """The execution's Step Functions history as interpreter-style events."""
    sfn = client("stepfunctions", settings)
    raw: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        raw.extend(page.get("events", []))
        if not page.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextToken"]
    events: list[ExecutionEvent] = []
    open_states: list[str] = []
    for item in raw:
        kind = item.get("type", "")
        stamp = item.get("timestamp")
        ts = stamp.timestamp() if hasattr(stamp, "timestamp") else time.time()
        if kind.endswith(_ENTERED):
            name = item.get("stateEnteredEventDetails", {}).get("name")
            open_states.append(name)
            events.append(ExecutionEvent("StateEntered", name, timestamp=ts))
        elif kind.endswith(_EXITED):
            name = item.get("stateExitedEventDetails", {}).get("name")
            if name in open_states:
                open_states.remove(name)
            events.append(ExecutionEvent("StateExited", name, timestamp=ts))
        elif kind in ("TaskFailed", "LambdaFunctionFailed", "TaskTimedOut", "LambdaFunctionTimedOut"):
            details = next((v for k, v in item.items() if k.endswith("EventDetails")), {})
            state = open_states[-1] if open_states else None
            events.append(
                ExecutionEvent(
                    "TaskFailed",
                    state,
                    timestamp=ts,
                    details={"error": details.get("error", kind), "cause": details.get("cause", "")},
                )
            )
    return events


def describe(settings: Settings, execution_id: str) -> dict[str, Any]:
    """A record of a deployed execution (status, states, failure) in the local record format."""
    arn = execution_arn(settings, execution_id)
    sfn = client("stepfunctions", settings)
    try:
        info = sfn.describe_execution(executionArn=arn)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("ExecutionDoesNotExist", "InvalidArn"):
            raise NotFoundError(
                f"execution {execution_id!r} does not exist", hint="see the AWS console"
            ) from None
        raise
    execution_input = json.loads(info.get("input") or "{}")
    record = ExecutionRecord(info["name"], settings.env, "remote", info["stateMachineArn"], execution_input)
    record.data["execution_arn"] = arn
    record.data["started_at"] = str(info.get("startDate"))
    for event in history_events(settings, arn):
        record.on_event(event)
    status = info["status"]
    if status in TERMINAL:
        record.finish(
            ExecutionOutcome(
                status,
                output=json.loads(info["output"]) if info.get("output") else None,
                error=info.get("error"),
                cause=info.get("cause"),
            )
        )
        record.data["stopped_at"] = str(info.get("stopDate"))
    return record.to_dict()


def latest_execution_id(settings: Settings) -> str:
    """The name of the most recent execution of the deployed pipeline."""
    response = client("stepfunctions", settings).list_executions(
        stateMachineArn=state_machine_arn(settings), maxResults=1
    )
    executions = response.get("executions", [])
    if not executions:
        raise NotFoundError("the deployed pipeline has no executions", hint="recsys pipeline run --env <env>")
    return str(executions[0]["name"])


def follow(
    settings: Settings,
    execution_id: str,
    *,
    listener: Callable[[ExecutionEvent], None] | None = None,
    poll_s: float = DEFAULT_POLL_S,
    timeout_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll an execution until it ends (or `timeout_s` passes), reporting new history events."""
    seen = 0
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        record = describe(settings, execution_id)
        events = record["events"]
        if listener is not None:
            for item in events[seen:]:
                listener(
                    ExecutionEvent(
                        item["type"],
                        item.get("state"),
                        details={
                            k: v for k, v in item.items() if k not in ("type", "state", "path", "timestamp")
                        },
                    )
                )
        seen = len(events)
        if record["status"] in TERMINAL:
            return record
        if deadline is not None and time.monotonic() >= deadline:
            return record
        sleep(poll_s)


def recent_executions(settings: Settings, limit: int = 10) -> list[dict[str, Any]]:
    """The most recent executions of the deployed pipeline, newest first."""
    response = client("stepfunctions", settings).list_executions(
        stateMachineArn=state_machine_arn(settings), maxResults=max(1, min(limit, 1000))
    )
    return [
        {
            "execution_id": e["name"],
            "status": e["status"],
            "started_at": str(e.get("startDate")),
            "stopped_at": str(e["stopDate"]) if e.get("stopDate") else None,
            "version": None,
            "error": None,
        }
        for e in response.get("executions", [])
    ]
