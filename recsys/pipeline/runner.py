"""Local execution of the pipeline's state machine on the local stack.

The same `state_machine.asl.json` that Terraform deploys runs in the ASL interpreter; each placeholder becomes
the local function name, and each Task runs the stage that function runs (`recsys.stages.table`) in-process,
with the run's settings and a Lambda-like context object, exactly as the function's handler would. Payloads
and results go through JSON, as they would over the Lambda API, and a stage's exception becomes a Step
Functions error named after its type.
The history is recorded under `{home}/executions/` and `s3://{artifacts}/executions/`.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from recsys.catalog import LOCAL_ACCOUNT_ID
from recsys.errors import RecsysError, ValidationError
from recsys.pipeline.asl import ExecutionEvent, ExecutionOutcome, StateMachine, StatesError
from recsys.pipeline.definition import LAMBDA_INVOKE, render
from recsys.pipeline.history import ExecutionRecord, ExecutionStore
from recsys.pipeline.invoke import run_where_configured
from recsys.stages.table import BY_FUNCTION, Stage

if TYPE_CHECKING:
    from recsys.config import Settings

LOCAL_TIMEOUT_S = 900  # the Lambda maximum; local runs are not cut short at the profile's timeout


def new_execution_id() -> str:
    """`exec-20261124-193000-ab12cd`: sortable by start time, unique."""
    return f"exec-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


class LambdaContext:
    """The attributes of AWS Lambda's context object that handlers and Powertools read."""

    def __init__(self, function_name: str, region: str, memory_mb: int, timeout_s: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = datetime.now(UTC).strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def lambda_error(exc: BaseException) -> StatesError:
    """A handler exception as Step Functions reports it: error = the type, cause = Lambda's error JSON."""
    cause: dict[str, Any] = {
        "errorMessage": getattr(exc, "message", None) or str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_tb(exc.__traceback__)[-5:],
    }
    if isinstance(exc, RecsysError):
        cause["errorCode"] = exc.code.value
        if exc.hint:
            cause["hint"] = exc.hint
    return StatesError(type(exc).__name__, json.dumps(cause))


class LocalLambdaInvoker:
    """Runs catalogue functions in-process: `lambda:invoke` Tasks and plain function-ARN Tasks."""

    def __init__(self, settings: Settings, stages: Mapping[str, Stage] | None = None) -> None:
        self.settings = settings
        self.stages = dict(BY_FUNCTION if stages is None else stages)  # catalogue function -> stage
        self._by_name = {name: key for key, name in settings.names.functions.items()}

    def function_key(self, name_or_arn: str) -> str:
        """The catalogue key of a function name or ARN (one that runs a pipeline stage)."""
        name = name_or_arn.rsplit(":function:", 1)[-1].split(":")[0]
        key = self._by_name.get(name)
        if key in self.stages:
            return key
        raise StatesError("Lambda.ResourceNotFoundException", f"Function not found: {name_or_arn}")

    def invoke(self, key: str, payload: Any) -> Any:
        """Call function `key` with `payload` as Lambda would (JSON in, JSON out)."""
        stage = self.stages[key]
        event = json.loads(json.dumps(payload))
        profile = self.settings.profile
        context = LambdaContext(
            self.settings.names.function(key), self.settings.region, profile.lambda_memory_mb, LOCAL_TIMEOUT_S
        )
        try:
            result = run_where_configured(stage, event, self.settings, context)
        except Exception as exc:
            raise lambda_error(exc) from exc
        try:
            return json.loads(json.dumps(result))
        except (TypeError, ValueError) as exc:
            raise StatesError("Lambda.Unknown", f"the result of {key} is not JSON: {exc}") from None

    def __call__(self, resource: str, parameters: Any) -> Any:
        if resource == LAMBDA_INVOKE:
            if not isinstance(parameters, dict) or "FunctionName" not in parameters:
                raise StatesError("States.Runtime", "lambda:invoke needs Parameters.FunctionName")
            key = self.function_key(str(parameters["FunctionName"]))
            payload = self.invoke(key, parameters.get("Payload", {}))
            return {"ExecutedVersion": "$LATEST", "Payload": payload, "StatusCode": 200}
        if resource.startswith("arn:aws:lambda:"):
            return self.invoke(self.function_key(resource), parameters)
        raise StatesError("States.Runtime", f"the local runner cannot run resource {resource!r}")


@dataclass
class PipelineRun:
    """The result of one execution: its record (as a dict) and where it was saved."""

    record: dict[str, Any]
    local_path: str | None = None
    s3_key: str | None = None

    @property
    def status(self) -> str:
        return self.record["status"]

    @property
    def output(self) -> Any:
        return self.record.get("output")


def local_definition(settings: Settings) -> dict[str, Any]:
    """The state machine with the local function names substituted."""
    return render(settings.names.functions)


def run_local(
    execution_input: dict[str, Any],
    settings: Settings,
    *,
    listener: Callable[[ExecutionEvent], None] | None = None,
    execution_id: str | None = None,
    definition: dict[str, Any] | None = None,
    invoker: Callable[[str, Any], Any] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PipelineRun:
    """Execute the pipeline on the local stack and record its history; never raises for a failed run."""
    if not settings.is_local:
        raise ValidationError(f"the local runner runs env 'local', not {settings.env!r}")
    execution_id = execution_id or new_execution_id()
    name = settings.names.state_machines["ml_pipeline"]
    record = ExecutionRecord(execution_id, settings.env, "local", name, execution_input)
    store = ExecutionStore(settings)

    def on_event(event: ExecutionEvent) -> None:
        record.on_event(event)
        if event.type in ("StateExited", "TaskFailed", "StateRetry"):
            store.save_local(record.to_dict())
        if listener is not None:
            listener(event)

    machine = StateMachine(
        definition if definition is not None else local_definition(settings),
        invoker or LocalLambdaInvoker(settings),
        name=name,
        sleep=sleep,
        listener=on_event,
    )
    store.save_local(record.to_dict())
    # Stages' log lines must not mix with the CLI's machine-readable stdout.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            outcome = machine.execute(execution_input, execution_id=execution_id)
        except KeyboardInterrupt:
            outcome = ExecutionOutcome("ABORTED", error="Interrupted", cause="stopped by the user")
    record.finish(outcome)
    final = record.to_dict()
    local_path = store.save_local(final)
    s3_key = None
    with contextlib.suppress(Exception):  # the local file is the record of last resort
        s3_key = store.save_s3(final)
    return PipelineRun(final, str(local_path), s3_key)
