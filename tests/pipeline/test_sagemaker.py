"""The SageMaker launcher against the local stack (moto's SageMaker API; the container runs in-process)."""

from __future__ import annotations

import json
import uuid

import pytest

from recsys.aws import client
from recsys.errors import ValidationError
from recsys.pipeline.sagemaker import SageMakerLauncher, TrainingJobFailed, io_keys, job_name
from recsys.pipeline.sagemaker_entry import run_job
from recsys.stages.contracts import Contract
from recsys.stages.table import Stage
from recsys.storage import get_json

STAGES = {
    "echo": Stage("echo", "none", "tests.pipeline.stand_in_stage", Contract, Contract, training_job=True)
}


def test_job_names_are_valid_and_bounded(local_stack):
    name = job_name(local_stack, "two_tower", "v20261124-193000-ab12cd")
    assert name == "videorecsystem-local-two-tower-v20261124-193000-ab12cd"
    long = job_name(local_stack, "two_tower", "v" + "x" * 100)
    assert len(long) == 63 and long.replace("-", "").isalnum()


def test_launch_follow_and_return_the_stage_output(local_stack):
    version = f"v{uuid.uuid4().hex[:10]}"
    launcher = SageMakerLauncher(local_stack, stages=STAGES, sleep=lambda s: None)
    out = launcher.run("echo", {"version": version, "n": 3})
    assert out == {"model": "stand_in", "version": version, "seen": 3, "env": "local"}
    job = job_name(local_stack, "echo", version)
    described = client("sagemaker", local_stack).describe_training_job(TrainingJobName=job)
    assert described["HyperParameters"]["stage"] == "echo"
    assert described["AlgorithmSpecification"]["TrainingImage"].endswith("-training:latest")
    assert get_json(local_stack, local_stack.names.bucket("artifacts"), io_keys(job)["input"])["n"] == 3
    # Launching again (a retried Lambda) follows the same job instead of starting another.
    calls = []
    again = SageMakerLauncher(local_stack, stages=STAGES, executor=lambda j, h: calls.append(j))
    assert again.run("echo", {"version": version, "n": 3}) == out
    assert calls == []


def test_a_failing_stage_is_a_clear_training_job_error(local_stack):
    version = f"v{uuid.uuid4().hex[:10]}"
    launcher = SageMakerLauncher(local_stack, stages=STAGES, sleep=lambda s: None)
    with pytest.raises(TrainingJobFailed, match="ValueError: stand-in stage failed: boom"):
        launcher.run("echo", {"version": version, "fail": "boom"})


def test_a_job_without_output_and_bad_requests_are_errors(local_stack):
    version = f"v{uuid.uuid4().hex[:10]}"
    silent = SageMakerLauncher(local_stack, stages=STAGES, executor=lambda j, h: None, sleep=lambda s: None)
    with pytest.raises(TrainingJobFailed, match="completed without an output"):
        silent.run("echo", {"version": version})
    with pytest.raises(ValidationError, match="unknown training stage"):
        silent.run("nope", {"version": version})
    with pytest.raises(ValidationError, match="needs the pipeline version"):
        silent.run("echo", {})


def test_entry_point_writes_failure_file_for_sagemaker(local_stack, tmp_path):
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    bucket = local_stack.names.bucket("artifacts")
    config.joinpath("hyperparameters.json").write_text(
        json.dumps({"stage": "echo", "input_s3": f"s3://{bucket}/missing/{uuid.uuid4().hex}.json"})
    )
    with pytest.raises(Exception, match="does not exist"):
        run_job(tmp_path, local_stack, stage="train", stages=STAGES)
    assert (tmp_path / "output" / "failure").read_text().startswith("NotFoundError: s3://")


class ScriptedSageMaker:
    """SageMaker's describe_training_job answering a script of statuses (moto's jobs complete at once)."""

    def __init__(self, *descriptions):
        self.descriptions = list(descriptions)

    def describe_training_job(self, TrainingJobName):
        return self.descriptions.pop(0) if len(self.descriptions) > 1 else self.descriptions[0]


def test_time_budget_running_out_asks_to_resume_and_failures_carry_the_reason(local_stack):
    from recsys.pipeline.sagemaker import SageMakerConfig, TrainingJobStillRunning

    config = SageMakerConfig(image_uri="img", role_arn="role", poll_s=10)
    clock = iter(range(0, 1000, 10))
    running = {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Training"}
    launcher = SageMakerLauncher(
        local_stack,
        config=config,
        sagemaker_client=ScriptedSageMaker(running),
        sleep=lambda s: None,
        clock=lambda: next(clock),
    )
    with pytest.raises(TrainingJobStillRunning, match="still InProgress"):
        launcher.wait("job-x", time_budget_s=35)

    failed = {"TrainingJobStatus": "Failed", "FailureReason": "AlgorithmError: ValueError: bad config"}
    launcher = SageMakerLauncher(
        local_stack, config=config, sagemaker_client=ScriptedSageMaker(running, failed), sleep=lambda s: None
    )
    description = launcher.wait("job-y")
    with pytest.raises(TrainingJobFailed, match="AlgorithmError: ValueError: bad config"):
        launcher.result("job-y", description)
    with pytest.raises(TrainingJobFailed, match="was stopped"):
        launcher.result("job-y", {"TrainingJobStatus": "Stopped"})
