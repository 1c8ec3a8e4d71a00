"""The pipeline's definition run by moto's Step Functions engine and by our interpreter, with the same stubs.

moto (`stepfunctions.execute_state_machine`) runs the rendered `state_machine.asl.json` unchanged, in-process;
its Lambda calls reach moto's Docker-free Lambda backend, whose `invoke` is patched here to answer from the
same stub table our interpreter's invoker uses (moto's own `set_lambda_simple_result` queue is not keyed by
function, so it cannot serve the Parallel branches, which call their functions in either order, and it cannot
fail). Each path compares the states visited (in order, per top-level / branch scope), the payload each
function received, and how the execution ended.

One correction to moto: since getmoto/moto#7825 its `extract_json` returns a list for any field read through
an array index, so the Parallel state's `"$[0].preprocessing"` gives `[{...}]` where Step Functions (and
LocalStack, whose engine moto's is) give the object. The fixture narrows that to what the issue was about
(filters and wildcards); `test_moto_still_wraps_indexed_fields` notices when moto changes.
"""

from __future__ import annotations

import json
import operator
import time
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from jsonpath_ng.ext import parse as parse_jsonpath
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.stepfunctions.parser.asl.component.common.string import string_expression
from moto.stepfunctions.parser.asl.component.intrinsic.argument import argument
from moto.stepfunctions.parser.asl.utils import json_path

from recsys.pipeline import asl
from recsys.pipeline.asl import StateMachine, StatesError
from recsys.pipeline.definition import LAMBDA_INVOKE, placeholder_functions, render
from recsys.pipeline.jsonpath import PathError, parse_path

REGION = "us-east-1"
FUNCTIONS = {key: f"recsys-test-{key}" for key in placeholder_functions()}
BY_NAME = {name: key for key, name in FUNCTIONS.items()}
INPUT = {"source": {"kind": "synthetic"}}


@dataclass(frozen=True)
class Failure:
    """A stubbed function that raises: Lambda reports `errorType` as the error and its error JSON as cause."""

    error_type: str
    message: str

    def payload(self) -> str:
        return json.dumps({"errorType": self.error_type, "errorMessage": self.message}, separators=(",", ":"))


def stubs(gates_passed: bool = True, failing: str | None = None) -> dict[str, Any]:
    """What each catalogue function returns (or a Failure), keyed by catalogue key."""
    gates = {"passed": gates_passed, "checks": [{"name": "lift", "value": 0.9, "threshold": 0.5}]}
    results: dict[str, Any] = {
        "preprocessing": {"job_id": "job-1", "version": "v1", "artifacts": {"train": "train.parquet"}},
        "train_two_tower": {"version": "v1", "artifacts": {"embeddings": "e.npz"}},
        "train_ranker": {"version": "v1", "artifacts": {"model": "ranker.cbm"}},
        "feature_ingestion": {"video_features": 4, "user_features": 5},
        "evaluation": {
            "version": "v1",
            "metrics": {"recall_at_10": 0.25},
            "gates": gates,
            "metrics_key": "metrics.json",
            "report_key": "report.html",
        },
        "refit_models": {
            "version": "v1",
            "two_tower": {"version": "v1", "artifacts": {"embeddings": "all.npz"}},
            "sources": {"key": "sources.npz"},
            "served": "ranker",
        },
        "deployment": {"version": "v1", "status": "production"},
        "precompute_cache": {"version": "v1", "status": "filled", "users": 5, "k": 20, "seconds": 0.1},
    }
    if failing is not None:
        results[failing] = Failure("ValueError", f"{failing} failed")
    return results


@dataclass
class Trace:
    """One execution as either engine saw it."""

    status: str
    error: str | None
    cause: str | None
    output: Any
    visits: list[str]  # states entered, in order
    payloads: dict[str, list[Any]] = field(default_factory=dict)  # function key -> payloads received


def scopes(definition: dict[str, Any], where: str = "") -> dict[str, str]:
    """State name -> its scope ("" at the top, "TrainAndExport/0" inside a branch); names are unique."""
    found: dict[str, str] = {}
    for name, state in definition["States"].items():
        assert name not in found, f"state name {name} is used twice"
        found[name] = where
        for i, branch in enumerate(state.get("Branches", [])):
            found.update(scopes(branch, f"{name}/{i}"))
    return found


def task_functions(definition: dict[str, Any]) -> dict[str, str]:
    """Task state name -> the catalogue key of the function it invokes (branches included)."""
    found: dict[str, str] = {}
    for name, state in definition["States"].items():
        if state["Type"] == "Task":
            found[name] = BY_NAME[state["Parameters"]["FunctionName"]]
        for branch in state.get("Branches", []):
            found.update(task_functions(branch))
    return found


DEFINITION = render(FUNCTIONS)
SCOPES = scopes(DEFINITION)
TASK_FUNCTIONS = task_functions(DEFINITION)


def differences(ours: Trace, moto: Trace, ignore: tuple[str, ...] = ()) -> list[str]:
    """How the two runs differ (empty when they agree); the scopes in `ignore` are left out."""
    found = [
        f"{attr}: ours {getattr(ours, attr)!r} != moto {getattr(moto, attr)!r}"
        for attr in ("status", "error", "cause", "output")
        if getattr(ours, attr) != getattr(moto, attr)
    ]
    for scope in sorted(set(SCOPES.values()) - set(ignore)):
        mine = [name for name in ours.visits if SCOPES[name] == scope]
        theirs = [name for name in moto.visits if SCOPES[name] == scope]
        if mine != theirs:  # branches interleave, so only the order within a scope is fixed
            found.append(f"states in {scope or 'the top level'}: ours {mine} != moto {theirs}")
    skipped = {key for name, key in TASK_FUNCTIONS.items() if SCOPES[name] in ignore}
    for key in sorted((set(ours.payloads) | set(moto.payloads)) - skipped):
        if ours.payloads.get(key) != moto.payloads.get(key):
            found.append(f"payloads of {key}: ours {ours.payloads.get(key)} != moto {moto.payloads.get(key)}")
    return found


def run_ours(definition: dict[str, Any], results: dict[str, Any]) -> Trace:
    payloads: dict[str, list[Any]] = {}
    visits: list[str] = []

    def invoke(resource: str, parameters: Any) -> Any:
        assert resource == LAMBDA_INVOKE
        key = BY_NAME[parameters["FunctionName"]]
        payloads.setdefault(key, []).append(json.loads(json.dumps(parameters["Payload"])))
        result = results[key]
        if isinstance(result, Failure):
            raise StatesError(result.error_type, result.payload())
        return {"ExecutedVersion": "$LATEST", "Payload": result, "StatusCode": 200}

    def listen(event: asl.ExecutionEvent) -> None:
        if event.type == "StateEntered":
            visits.append(event.state)

    outcome = StateMachine(definition, invoke, listener=listen, sleep=lambda s: None).execute(INPUT)
    return Trace(outcome.status, outcome.error, outcome.cause, outcome.output, visits, payloads)


def extract_reference_path(path: str, data: Any) -> Any:
    """moto's `extract_json`, except that a plain reference path (`$[0].a.b`) gives the one node it names."""
    try:
        parse_path(path)
    except PathError:
        return json_path.extract_json(path, data)  # filters, wildcards, slices: moto's own rules
    matches = [] if path.startswith("$$") else parse_jsonpath(path).find(data)
    return matches[0].value if len(matches) == 1 else json_path.extract_json(path, data)


def test_moto_still_wraps_indexed_fields() -> None:
    """When this fails, moto reads `$[0].a` as Step Functions does: drop `extract_reference_path`."""
    data = [{"a": {"b": 1}}]
    assert json_path.extract_json("$[0].a", data) == [{"b": 1}]
    assert extract_reference_path("$[0].a", data) == {"b": 1}
    assert extract_reference_path("$[0].a.b", data) == 1


@pytest.fixture
def run_moto(monkeypatch: pytest.MonkeyPatch):
    """Run a definition in moto's Step Functions engine with Lambda answering from a stub table."""
    table: dict[str, Any] = {}
    payloads: dict[str, list[Any]] = {}

    def invoke(self, function_name, qualifier, body, headers, response_headers):
        key = BY_NAME[function_name.rsplit(":function:", 1)[-1]]
        payloads.setdefault(key, []).append(json.loads(body))
        result = table[key]
        if isinstance(result, Failure):
            response_headers["x-amz-function-error"] = "Unhandled"
            return result.payload().encode()
        return json.dumps(result).encode()

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
    for module in (string_expression, argument):
        monkeypatch.setattr(module, "extract_json", extract_reference_path)

    def run(definition: dict[str, Any], results: dict[str, Any]) -> Trace:
        table.clear()
        table.update(results)
        payloads.clear()
        config = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
        with mock_aws(config=config):
            sfn = boto3.client("stepfunctions", region_name=REGION)
            arn = sfn.create_state_machine(
                name="ml-pipeline",
                definition=json.dumps(definition),
                roleArn="arn:aws:iam::123456789012:role/sfn",
            )["stateMachineArn"]
            execution_arn = sfn.start_execution(stateMachineArn=arn, name="compare", input=json.dumps(INPUT))[
                "executionArn"
            ]
            deadline = time.monotonic() + 60
            while (described := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
                assert time.monotonic() < deadline, "moto's execution did not finish"
                time.sleep(0.02)
            events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        visits = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
        output = json.loads(described["output"]) if "output" in described else None
        return Trace(
            described["status"],
            described.get("error"),
            described.get("cause"),
            output,
            visits,
            dict(payloads),
        )

    return run


def test_gates_pass_deploys_in_both_engines(run_moto) -> None:
    ours, moto = run_ours(DEFINITION, stubs()), run_moto(DEFINITION, stubs())
    assert differences(ours, moto) == []
    assert moto.status == "SUCCEEDED" and moto.visits[-3:] == ["Deployment", "PrecomputeCache", "Summary"]
    assert moto.output["deployment"] == {"version": "v1", "status": "production"}
    assert moto.output["precompute"]["precompute"]["users"] == 5
    assert moto.payloads["precompute_cache"] == [{"version": "v1"}]


def test_failing_precompute_still_ends_in_the_summary_in_both_engines(run_moto) -> None:
    # production has already changed when the cache is filled: the run succeeds and says what failed
    results = stubs(failing="precompute_cache")
    ours, moto = run_ours(DEFINITION, results), run_moto(DEFINITION, results)
    assert differences(ours, moto) == []
    assert moto.status == "SUCCEEDED" and moto.visits[-2:] == ["PrecomputeCache", "Summary"]
    assert moto.output["precompute"]["Error"] == "ValueError"


def test_gates_fail_does_not_deploy_in_both_engines(run_moto) -> None:
    results = stubs(gates_passed=False)
    ours, moto = run_ours(DEFINITION, results), run_moto(DEFINITION, results)
    assert differences(ours, moto) == []
    assert (moto.status, moto.error, moto.visits[-1]) == ("FAILED", "GatesFailed", "GatesFailed")
    assert "Deployment" not in moto.visits and "deployment" not in moto.payloads
    assert json.loads(moto.cause)["passed"] is False


def test_failing_task_is_caught_and_ends_in_its_failure_state_in_both_engines(run_moto) -> None:
    results = stubs(failing="evaluation")
    ours, moto = run_ours(DEFINITION, results), run_moto(DEFINITION, results)
    assert differences(ours, moto) == []
    assert (moto.status, moto.error, moto.visits[-1]) == ("FAILED", "ValueError", "EvaluationFailed")
    assert json.loads(moto.cause)["errorMessage"] == "evaluation failed"


def test_failing_branch_is_caught_by_the_parallel_state_in_both_engines(run_moto) -> None:
    results = stubs(failing="train_ranker")
    ours, moto = run_ours(DEFINITION, results), run_moto(DEFINITION, results)
    # How far the sibling branch (the feature export) gets before it is stopped depends on timing.
    assert differences(ours, moto, ignore=("TrainAndExport/1",)) == []
    assert (moto.status, moto.error, moto.visits[-1]) == ("FAILED", "ValueError", "TrainingFailed")


def test_the_comparison_notices_a_different_choice(run_moto, monkeypatch: pytest.MonkeyPatch) -> None:
    moto = run_moto(DEFINITION, stubs())
    check, _ = asl.COMPARISONS["BooleanEquals"]
    monkeypatch.setitem(asl.COMPARISONS, "BooleanEquals", (check, operator.ne))  # a broken Choice
    found = differences(run_ours(DEFINITION, stubs()), moto)
    assert any("GatesFailed" in line for line in found), found
