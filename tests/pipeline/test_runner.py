"""The real state machine definition run by the local runner, with stand-in stages on disk."""

from __future__ import annotations

import json
import sys
import textwrap
import uuid

import pytest

from recsys.catalog import load_catalog
from recsys.errors import NotFoundError, ValidationError
from recsys.pipeline.asl import validate_definition
from recsys.pipeline.definition import definition_text, placeholder_functions, render
from recsys.pipeline.history import ExecutionStore, summarize
from recsys.pipeline.runner import LocalLambdaInvoker, run_local
from recsys.stages.contracts import Contract
from recsys.stages.table import BY_FUNCTION, Stage
from recsys.storage import get_json

STAND_INS = {
    "preprocessing": """
        def run(event, settings):
            if event["source"].get("fail") == "preprocessing":
                raise ValueError("the source has no interactions")
            return {"job_id": "job-1", "version": "v1", "source": event["source"],
                    "artifacts": {"vocabularies": "preprocessing/job-1/vocabularies.json"}, "stats": {}}
    """,
    "train_two_tower": """
        import os
        def run(event, settings):
            assert settings.env == "local"
            marker = os.path.join(os.environ["STAND_IN_DIR"], "two_tower_attempts")
            n = int(open(marker).read()) + 1 if os.path.exists(marker) else 1
            open(marker, "w").write(str(n))
            if event["source"].get("flaky") and n == 1:
                raise type("ServiceException", (Exception,), {})("throttled")
            return {"model": "two_tower", "version": event["version"], "artifacts": {"emb": "e.npz"}, "train": {}}
    """,
    "train_ranker": """
        def run(event, settings):
            if event["source"].get("fail") == "ranker":
                raise RuntimeError("catboost exploded")
            # The ranker sees the preprocessing output merged with the two-tower output.
            assert event["job_id"] == "job-1" and event["two_tower"]["model"] == "two_tower"
            return {"model": "ranker", "version": event["version"], "artifacts": {"cbm": "r.cbm"}, "train": {}}
    """,
    "feature_ingestion": """
        def run(event, settings):
            return {"user_features": 3, "video_features": 4, "job_id": event["job_id"]}
    """,
    "evaluation": """
        def run(event, settings):
            passed = not event["preprocessing"]["source"].get("gates_fail")
            return {"version": event["two_tower"]["version"], "metrics": {"recall_at_100": 0.4},
                    "gates": {"passed": passed, "checks": [
                        {"name": "recall_at_100", "value": 0.4 if passed else 0.01, "threshold": 0.1, "passed": passed}]},
                    "metrics_key": "evaluation/v1/metrics.json", "report_key": "evaluation/v1/report.html"}
    """,
    "refit_models": """
        def run(event, settings):
            assert set(event) == {"version", "preprocessing", "two_tower", "ranker", "evaluation"}
            assert event["evaluation"]["gates"]["passed"] is True
            refit = {**event["two_tower"], "train": {"window": "all"}}
            return {"version": event["evaluation"]["version"], "two_tower": refit,
                    "sources": {"key": "models/sources/v1/sources.npz"}, "served": "ranker"}
    """,
    "deployment": """
        def run(event, settings):
            assert set(event) == {"preprocessing", "two_tower", "ranker", "evaluation", "refit"}
            assert event["two_tower"]["train"] == {"window": "all"}  # the refit model is deployed
            return {"version": event["evaluation"]["version"], "status": "production"}
    """,
    "precompute_cache": """
        def run(event, settings):
            assert event == {"version": "v1"}
            return {"version": event["version"], "status": "filled", "users": 3, "k": 20, "seconds": 0.1}
    """,
}


def stand_in_stages(tmp_path, monkeypatch) -> dict[str, Stage]:
    """The stage table with every stage replaced by a stand-in module written under tmp_path."""
    package = f"stand_in_stages_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / package
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    stages = {}
    for key, body in STAND_INS.items():
        (folder / f"{key}.py").write_text(textwrap.dedent(body))
        real = BY_FUNCTION[key]
        stages[key] = Stage(real.name, key, f"{package}.{key}", Contract, Contract)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("STAND_IN_DIR", str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    return stages


def run(settings, tmp_path, monkeypatch, **source):
    stages = stand_in_stages(tmp_path, monkeypatch)
    slept = []
    result = run_local(
        {"source": {"kind": "synthetic", **source}},
        settings,
        invoker=LocalLambdaInvoker(settings, stages),
        sleep=slept.append,
    )
    return result, slept


def test_definition_is_sound_and_every_placeholder_is_a_catalogue_function():
    functions = load_catalog()["functions"]
    keys = placeholder_functions()
    assert set(keys) == {
        "preprocessing",
        "train_two_tower",
        "train_ranker",
        "feature_ingestion",
        "evaluation",
        "refit_models",
        "deployment",
        "precompute_cache",
    }
    assert all(k in functions for k in keys)
    definition = render({k: f"arn:aws:lambda:us-east-1:1:function:{k}" for k in keys})
    assert validate_definition(definition) == []
    assert "%{" not in definition_text()  # nothing else that Terraform's templatefile would interpret


def test_pipeline_succeeds_passes_data_and_records_history(local_stack, tmp_path, monkeypatch):
    result, slept = run(local_stack, tmp_path, monkeypatch)
    assert result.status == "SUCCEEDED", result.record.get("cause")
    out = result.output
    assert out["version"] == "v1" and out["job_id"] == "job-1"
    assert out["deployment"] == {"version": "v1", "status": "production"}
    assert out["precompute"]["precompute"]["status"] == "filled"
    assert out["artifacts"]["two_tower"] == {"emb": "e.npz"}
    assert out["artifacts"]["features"]["video_features"] == 4
    assert slept == []
    states = {row["state"]: row["status"] for row in result.record["states"].values()}
    assert states == {
        "Preprocessing": "SUCCEEDED",
        "TrainAndExport": "SUCCEEDED",
        "TrainTwoTower": "SUCCEEDED",
        "TrainRanker": "SUCCEEDED",
        "ExportFeatures": "SUCCEEDED",
        "Evaluation": "SUCCEEDED",
        "GatesPassed": "SUCCEEDED",
        "Refit": "SUCCEEDED",
        "Deployment": "SUCCEEDED",
        "PrecomputeCache": "SUCCEEDED",
        "Summary": "SUCCEEDED",
    }
    store = ExecutionStore(local_stack)
    assert store.latest_id() == result.record["execution_id"]
    assert store.load()["status"] == "SUCCEEDED"
    remote_copy = get_json(local_stack, local_stack.names.bucket("artifacts"), result.s3_key)
    assert remote_copy["execution_id"] == result.record["execution_id"]


def test_retry_of_a_throttled_task_then_success(local_stack, tmp_path, monkeypatch):
    definition = json.loads(definition_text())
    retry = definition["States"]["TrainAndExport"]["Branches"][0]["States"]["TrainTwoTower"]["Retry"]
    assert any("Lambda.ServiceException" in r["ErrorEquals"] for r in retry)
    # The stand-in raises an exception whose type is ServiceException once; map it to Lambda's name.
    invoker = LocalLambdaInvoker(local_stack, stand_in_stages(tmp_path, monkeypatch))
    original = invoker.invoke

    def invoke(key, payload):
        from recsys.pipeline.asl import StatesError

        try:
            return original(key, payload)
        except StatesError as exc:
            if exc.error == "ServiceException":
                raise StatesError("Lambda.ServiceException", exc.cause) from None
            raise

    invoker.invoke = invoke
    slept = []
    result = run_local(
        {"source": {"kind": "synthetic", "flaky": True}}, local_stack, invoker=invoker, sleep=slept.append
    )
    assert result.status == "SUCCEEDED"
    assert slept == [2.0]
    row = next(r for r in result.record["states"].values() if r["state"] == "TrainTwoTower")
    assert row["attempts"] == 2


def test_failing_stage_is_caught_named_and_explained(local_stack, tmp_path, monkeypatch):
    result, _ = run(local_stack, tmp_path, monkeypatch, fail="ranker")
    record = result.record
    assert record["status"] == "FAILED"
    assert record["error"] == "RuntimeError"
    assert record["failed_state"] == "TrainingFailed"  # the Catch routed to the named Fail state
    assert record["failed_task"] == "TrainRanker"
    summary = summarize(ExecutionStore(local_stack).load(record["execution_id"]))
    assert summary["explanation"] == "failed in TrainRanker: RuntimeError: catboost exploded"


def test_failing_gates_end_in_gates_failed_with_the_checks(local_stack, tmp_path, monkeypatch):
    result, _ = run(local_stack, tmp_path, monkeypatch, gates_fail=True)
    record = result.record
    assert (record["status"], record["error"], record["failed_state"]) == (
        "FAILED",
        "GatesFailed",
        "GatesFailed",
    )
    assert json.loads(record["cause"])["checks"][0]["name"] == "recall_at_100"
    assert "recall_at_100 = 0.01 (threshold 0.1)" in summarize(record)["explanation"]
    states = {row["state"] for row in record["states"].values()}
    assert "Deployment" not in states


def test_uncaught_failure_inside_a_branch_names_the_nested_state(local_stack, tmp_path, monkeypatch):
    definition = render(local_stack.names.functions)
    del definition["States"]["TrainAndExport"]["Catch"]  # let the branch failure end the execution
    stages = stand_in_stages(tmp_path, monkeypatch)
    result = run_local(
        {"source": {"kind": "synthetic", "fail": "ranker"}},
        local_stack,
        definition=definition,
        invoker=LocalLambdaInvoker(local_stack, stages),
        sleep=lambda s: None,
    )
    record = result.record
    assert (record["status"], record["error"], record["failed_state"]) == (
        "FAILED",
        "RuntimeError",
        "TrainRanker",
    )
    rows = [r for r in record["states"].values() if r["state"] == "TrainRanker"]
    assert len(rows) == 1 and rows[0]["status"] == "FAILED" and rows[0]["path"] == "TrainAndExport/0/"


def test_status_of_unknown_or_malformed_executions_is_a_clear_error(local_stack):
    store = ExecutionStore(local_stack)
    with pytest.raises(NotFoundError, match="not recorded"):
        store.load("exec-19990101-000000-000000")
    with pytest.raises(ValidationError, match="invalid execution id"):
        store.load("../../etc/passwd")
