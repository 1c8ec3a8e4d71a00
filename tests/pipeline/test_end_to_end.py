"""`recsys pipeline run --env local` end to end with the real stages on tiny data, then `recsys model rollback`."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from recsys import artifacts
from recsys.cli.main import app
from recsys.registry import ModelRegistry
from recsys.storage import exists, get_bytes

runner = CliRunner()
TINY = ["--users", "200", "--videos", "200", "--interactions", "4000"]
FAST = {"two_tower": {"epochs": 3, "batch_size": 256}, "ranker": {"iterations": 60, "depth": 4}}
# The test checks orchestration, not model quality (the ML tests and the demo do): gates always pass.
OPEN_GATES = {
    "min_ndcg_lift_over_popularity": None,
    "two_tower_recall_at_100": 0.0,
    "two_tower_ndcg_at_100": 0.0,
    "ranker_auc": 0.0,
    "ranker_ndcg": 0.0,
    "min_recall_lift_over_popularity": None,
}


def write_config(tmp_path, name, gates):
    path = tmp_path / name
    path.write_text(json.dumps({**FAST, "gates": gates}))
    return str(path)


def run_pipeline(*args):
    result = runner.invoke(app, ["pipeline", "run", "--env", "local", *TINY, *args, "--json"])
    return result, (json.loads(result.stdout) if result.stdout.strip() else None)


def embeddings(settings, key):
    with np.load(io.BytesIO(get_bytes(settings, settings.names.bucket("models"), key))) as npz:
        return npz["embeddings"]


@pytest.mark.slow
def test_run_twice_gate_failure_and_rollback(local_stack, tmp_path):
    open_gates = write_config(tmp_path, "open.json", OPEN_GATES)
    first, body = run_pipeline("--seed", "1", "--config", open_gates)
    assert first.exit_code == 0, first.output
    v1 = body["data"]["version"]
    job1 = body["data"]["job_id"]
    assert body["data"]["status"] == "SUCCEEDED" and body["data"]["gates"]["passed"] is True

    models, arts = local_stack.names.bucket("models"), local_stack.names.bucket("artifacts")
    reference_paths = [
        (models, artifacts.two_tower_key(v1, "video_embeddings.npz")),
        (models, artifacts.two_tower_key(v1, "model_config.json")),
        (models, artifacts.two_tower_key(v1, "vocabularies.json")),
        (models, artifacts.ranker_key(v1, "ranker_model.cbm")),
        (models, artifacts.VECTOR_STORE_KEY),
        (arts, artifacts.preprocessing_key(job1, "vocabularies.json")),
        (arts, artifacts.preprocessing_key(job1, "video_catalog.parquet")),
        (arts, artifacts.preprocessing_key(job1, "ranker_train.parquet")),
        (arts, f"evaluation/{v1}/metrics.json"),
        (arts, f"evaluation/{v1}/report.html"),
    ]
    assert [f"s3://{b}/{k}" for b, k in reference_paths if not exists(local_stack, b, k)] == []
    assert body["data"]["report"]["path"].endswith("report.html")

    second, body2 = run_pipeline("--seed", "2", "--config", open_gates)
    assert second.exit_code == 0, second.output
    v2 = body2["data"]["version"]
    assert v2 != v1
    registry = ModelRegistry(local_stack)
    assert registry.production().version == v2

    closed = write_config(tmp_path, "closed.json", {**OPEN_GATES, "two_tower_recall_at_100": 2.0})
    failed, error = run_pipeline("--seed", "3", "--config", closed)
    assert failed.exit_code == 7, failed.output  # gate_failed
    assert error["error"]["code"] == "gate_failed"
    assert "two_tower_recall_at_100" in error["error"]["message"]
    assert "report.html" in error["error"]["hint"]
    assert registry.production().version == v2

    status = runner.invoke(app, ["pipeline", "status", "--json"])
    assert status.exit_code == 0
    summary = json.loads(status.stdout)["data"]
    assert summary["status"] == "FAILED" and summary["error"] == "GatesFailed"
    listed_runs = json.loads(runner.invoke(app, ["pipeline", "list", "--limit", "3", "--json"]).stdout)[
        "data"
    ]
    assert [r["status"] for r in listed_runs] == ["FAILED", "SUCCEEDED", "SUCCEEDED"]
    assert [r["version"] for r in listed_runs[1:]] == [v2, v1]
    for human in (["pipeline", "list"], ["pipeline", "status"], ["model", "list"]):
        shown = runner.invoke(app, human, terminal_width=200)
        assert shown.exit_code == 0, shown.output
    assert "evaluation gates failed" in runner.invoke(app, ["pipeline", "status"], terminal_width=200).stdout
    assert "two_tower_recall_at_100" in summary["explanation"]

    rollback = runner.invoke(app, ["model", "rollback", "--json"])
    assert rollback.exit_code == 0, rollback.output
    assert json.loads(rollback.stdout)["data"]["version"] == v1
    assert registry.production().version == v1
    np.testing.assert_array_equal(
        embeddings(local_stack, artifacts.VECTOR_STORE_KEY),
        embeddings(local_stack, artifacts.two_tower_key(v1, "video_embeddings.npz")),
    )
    from recsys.serving.model_store import production_version

    assert production_version(local_stack) == v1

    listed = runner.invoke(app, ["model", "list", "--json"])
    statuses = {v["version"]: v["status"] for v in json.loads(listed.stdout)["data"]}
    assert (statuses[v1], statuses[v2]) == ("production", "archived")

    promoted = runner.invoke(app, ["model", "promote", v2, "--json"])
    assert promoted.exit_code == 0, promoted.output
    assert json.loads(promoted.stdout)["data"]["previous_version"] == v1
    assert production_version(local_stack) == v2
    np.testing.assert_array_equal(
        embeddings(local_stack, artifacts.VECTOR_STORE_KEY),
        embeddings(local_stack, artifacts.two_tower_key(v2, "video_embeddings.npz")),
    )


def test_a_failing_stage_fails_the_run_and_status_explains_it(local_stack):
    result = runner.invoke(
        app, ["pipeline", "run", "--env", "local", "--dataset", "no-such-dataset", "--json"]
    )
    assert result.exit_code != 0
    error = json.loads(result.stdout)["error"]
    assert "Preprocessing" in error["message"] and "no-such-dataset" in error["message"]
    status = runner.invoke(app, ["pipeline", "status", "--json"])
    summary = json.loads(status.stdout)["data"]
    assert summary["failed_task"] == "Preprocessing"
    assert summary["failed_state"] == "PreprocessingFailed"


def test_bad_arguments_are_usage_errors_before_anything_runs(local_stack):
    both = runner.invoke(app, ["pipeline", "run", "--dataset", "x", "--users", "5", "--json"])
    assert both.exit_code == 3 and "cannot be combined" in json.loads(both.stdout)["error"]["message"]
    zero = runner.invoke(app, ["pipeline", "run", "--users", "0", "--json"])
    assert zero.exit_code == 3 and "--users must be at least 1" in json.loads(zero.stdout)["error"]["message"]
    missing = runner.invoke(app, ["model", "promote", "v-does-not-exist", "--json"])
    assert missing.exit_code == 4


@pytest.mark.slow
def test_training_as_sagemaker_jobs_gives_the_same_pipeline(local_stack, tmp_path, monkeypatch):
    from recsys.aws import client

    monkeypatch.setenv("RECSYS_TRAINING_BACKEND", "sagemaker")
    config = write_config(tmp_path, "open.json", OPEN_GATES)
    try:  # the human rendering this time (tables on stdout, progress lines on stderr)
        args = ["pipeline", "run", "--env", "local", *TINY, "--seed", "4", "--config", config]
        result = runner.invoke(app, args, terminal_width=200)
    finally:
        monkeypatch.delenv("RECSYS_TRAINING_BACKEND")
    assert result.exit_code == 0, result.output
    assert "Report:" in result.stdout and "✓ Deployment" in result.stderr
    version = ModelRegistry(local_stack).production(consistent=True).version
    jobs = {
        j["TrainingJobName"]
        for j in client("sagemaker", local_stack).list_training_jobs()["TrainingJobSummaries"]
    }
    assert {f"videorecsystem-local-two-tower-{version}", f"videorecsystem-local-ranker-{version}"} <= jobs
    assert f"Deployed {version} to production" in result.stdout


def test_run_without_a_local_stack_says_how_to_start_it(local_stack, monkeypatch):
    from recsys.local.processes import free_port
    from tests.conftest import reset_caches

    monkeypatch.setenv("RECSYS_AWS_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    reset_caches()
    try:
        result = runner.invoke(app, ["pipeline", "run", "--env", "local", "--json"])
    finally:
        monkeypatch.undo()
        reset_caches()
    assert result.exit_code == 6, result.output
    assert "recsys local up" in json.loads(result.stdout)["error"]["hint"]
