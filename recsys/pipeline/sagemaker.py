"""Training as SageMaker training jobs (staging and prod): launch, follow, and map failures to clear errors.

The training image's entry point is `python -m recsys.pipeline.sagemaker_entry` (see that module): it reads
`/opt/ml/input/config/hyperparameters.json`, loads the stage input from S3, runs the same
`recsys.stages.<stage>.run` as the Lambda does, and writes the stage output (or the failure) back to S3:

    s3://{artifacts}/sagemaker/{job_name}/input.json | output.json | failure.json

Job names derive from (environment, stage, version), so launching is idempotent: a training Lambda that is
re-invoked (Step Functions retries `TrainingJobStillRunning` when the Lambda's time runs short) finds its job
and keeps following it instead of starting another. On the local stack (moto) no container runs, so the
launcher runs the entry point in-process right after creating the job, as SageMaker would in the container.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from recsys.aws import client
from recsys.catalog import LOCAL_ACCOUNT_ID
from recsys.errors import ErrorCode, NotFoundError, RecsysError, ValidationError
from recsys.pipeline.sagemaker_entry import run_job
from recsys.stages.table import STAGES, Stage
from recsys.storage import exists, get_json, put_json

if TYPE_CHECKING:
    from recsys.config import Settings

log = logging.getLogger(__name__)

# The stages a training job may run (no arbitrary imports from hyperparameters).
TRAINING_STAGES: dict[str, Stage] = {name: s for name, s in STAGES.items() if s.training_job}
TERMINAL = ("Completed", "Failed", "Stopped")
# The training image is the Lambda image; SageMaker overrides its entry point with this.
ENTRYPOINT = ("python", "-m", "recsys.pipeline.sagemaker_entry")
JOB_NAME_MAX = 63
SAFETY_MARGIN_S = 30.0


class TrainingJobFailed(RecsysError):
    """A training job ended Failed or Stopped, or completed without an output."""

    code = ErrorCode.FAILED


class TrainingJobStillRunning(RecsysError):
    """The caller's time ran out while the job runs; calling again resumes following the same job."""

    code = ErrorCode.UNAVAILABLE


class SageMakerConfig(BaseModel):
    """Where and how training jobs run; Terraform sets the `RECSYS_SAGEMAKER_*` / image variables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_uri: str
    role_arn: str
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = Field(1, ge=1)
    volume_gb: int = Field(30, ge=1)
    max_runtime_s: int = Field(4 * 3600, ge=60)
    poll_s: float = Field(30.0, gt=0)

    @classmethod
    def from_settings(cls, settings: Settings) -> SageMakerConfig:
        """The settings' `sagemaker` options, with the image and role derived from the stack where unset."""
        options = settings.sagemaker
        account = options.account_id or (
            LOCAL_ACCOUNT_ID
            if settings.is_local
            else client("sts", settings).get_caller_identity()["Account"]
        )
        stack = settings.stack_name
        return cls(
            image_uri=options.image_uri
            or _own_image_uri(settings)
            or f"{account}.dkr.ecr.{settings.region}.amazonaws.com/{stack.lower()}-training:latest",
            role_arn=options.role_arn or f"arn:aws:iam::{account}:role/{stack}-sagemaker",
            instance_type=options.instance_type,
            volume_gb=options.volume_gb,
            max_runtime_s=options.max_runtime_s,
            poll_s=options.poll_s,
        )


def _own_image_uri(settings: Settings) -> str | None:
    """Inside a training Lambda (a container image): that image, which is also the SageMaker image."""
    if settings.is_local:
        return None
    try:
        function = settings.names.function("train_two_tower")
        return client("lambda", settings).get_function(FunctionName=function)["Code"].get("ImageUri")
    except ClientError:
        return None


def job_name(settings: Settings, stage: str, version: str) -> str:
    """`videorecsystem-prod-two-tower-v20261124-...`, at most 63 characters of [a-zA-Z0-9-]."""
    raw = f"{settings.stack_name.lower()}-{stage}-{version}"
    name = re.sub(r"[^A-Za-z0-9-]+", "-", raw).strip("-")
    if len(name) > JOB_NAME_MAX:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[: JOB_NAME_MAX - 9].rstrip('-')}-{digest}"
    return name


def io_keys(job: str) -> dict[str, str]:
    """The S3 keys (artifacts bucket) of a job's input, output and failure documents."""
    prefix = f"sagemaker/{job}/"
    return {
        "input": prefix + "input.json",
        "output": prefix + "output.json",
        "failure": prefix + "failure.json",
    }


Executor = Callable[[str, dict[str, str]], None]


class SageMakerLauncher:
    """Launches one stage as a training job, follows it and returns the stage's output."""

    def __init__(
        self,
        settings: Settings,
        *,
        config: SageMakerConfig | None = None,
        executor: Executor | None = None,
        stages: Mapping[str, Stage] = TRAINING_STAGES,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        sagemaker_client: Any | None = None,
    ) -> None:
        self.settings = settings
        self.config = config or SageMakerConfig.from_settings(settings)
        self.stages = dict(stages)
        self._sm = sagemaker_client or client("sagemaker", settings)
        self._sleep = sleep
        self._clock = clock
        if executor is None and settings.is_local:
            executor = LocalContainer(settings, self.stages)
        self._executor = executor
        self.bucket = settings.names.bucket("artifacts")

    def describe(self, job: str) -> dict[str, Any] | None:
        """The job's description, or None when no such job exists."""
        try:
            return self._sm.describe_training_job(TrainingJobName=job)
        except ClientError as exc:
            message = exc.response.get("Error", {}).get("Message", "")
            if exc.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound") and (
                "not find" in message.lower() or "not found" in message.lower()
            ):
                return None
            raise

    def launch(self, stage: str, event: dict[str, Any], version: str) -> str:
        """Start the job for (stage, version) unless it exists; returns the job name."""
        if stage not in self.stages:
            raise ValidationError(f"unknown training stage {stage!r}", hint=f"one of {sorted(self.stages)}")
        job = job_name(self.settings, stage, version)
        if self.describe(job) is not None:
            return job
        keys = io_keys(job)
        put_json(self.settings, self.bucket, keys["input"], event)
        hyperparameters = {
            "stage": stage,
            "env": self.settings.env,
            "input_s3": f"s3://{self.bucket}/{keys['input']}",
            "output_s3": f"s3://{self.bucket}/{keys['output']}",
            "failure_s3": f"s3://{self.bucket}/{keys['failure']}",
        }
        cfg = self.config
        self._sm.create_training_job(
            TrainingJobName=job,
            HyperParameters=hyperparameters,
            AlgorithmSpecification={
                "TrainingImage": cfg.image_uri,
                "TrainingInputMode": "File",
                "ContainerEntrypoint": list(ENTRYPOINT),
            },
            RoleArn=cfg.role_arn,
            OutputDataConfig={
                "S3OutputPath": f"s3://{self.settings.names.bucket('models')}/sagemaker-output/"
            },
            ResourceConfig={
                "InstanceType": cfg.instance_type,
                "InstanceCount": cfg.instance_count,
                "VolumeSizeInGB": cfg.volume_gb,
            },
            StoppingCondition={"MaxRuntimeInSeconds": cfg.max_runtime_s},
            Environment=self._job_environment(),
            Tags=[{"Key": "recsys:stage", "Value": stage}, {"Key": "recsys:version", "Value": version}],
        )
        if self._executor is not None:
            self._executor(job, hyperparameters)
        return job

    def _job_environment(self) -> dict[str, str]:
        """What the container's `load_settings()` needs to find the same resources."""
        env = {
            "RECSYS_ENV": self.settings.env,
            "RECSYS_REGION": self.settings.region,
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
        if self.settings.bucket_suffix:
            env["RECSYS_BUCKET_SUFFIX"] = self.settings.bucket_suffix
        return env

    def wait(self, job: str, time_budget_s: float | None = None) -> dict[str, Any]:
        """Poll until the job ends; TrainingJobStillRunning when `time_budget_s` runs out first."""
        deadline = None if time_budget_s is None else self._clock() + time_budget_s
        while True:
            description = self.describe(job)
            if description is None:
                raise NotFoundError(f"training job {job!r} does not exist")
            status = description.get("TrainingJobStatus")
            if status in TERMINAL:
                return description
            if deadline is not None and self._clock() + self.config.poll_s > deadline:
                raise TrainingJobStillRunning(
                    f"training job {job} is still {status} ({description.get('SecondaryStatus', '')})",
                    hint="call again with the same input to keep following it",
                )
            self._sleep(self.config.poll_s)

    def result(self, job: str, description: dict[str, Any]) -> dict[str, Any]:
        """The stage output of a finished job, or TrainingJobFailed with the reason."""
        keys = io_keys(job)
        status = description.get("TrainingJobStatus")
        failure = self._failure(keys["failure"])
        if status == "Failed":
            raise TrainingJobFailed(
                f"training job {job} failed: {description.get('FailureReason') or failure or 'no reason given'}",
                hint=f"see the job's CloudWatch logs (/aws/sagemaker/TrainingJobs, stream {job}/...)",
            )
        if status == "Stopped":
            raise TrainingJobFailed(f"training job {job} was stopped", hint="start the pipeline again")
        if exists(self.settings, self.bucket, keys["output"]):
            return get_json(self.settings, self.bucket, keys["output"])
        raise TrainingJobFailed(
            f"training job {job} completed without an output"
            + (f": {failure}" if failure else f" at s3://{self.bucket}/{keys['output']}"),
            hint="check that the training image runs `python -m recsys.pipeline.sagemaker_entry`",
        )

    def _failure(self, key: str) -> str | None:
        if not exists(self.settings, self.bucket, key):
            return None
        data = get_json(self.settings, self.bucket, key)
        return f"{data.get('errorType')}: {data.get('errorMessage')}"

    def run(
        self,
        stage: str,
        event: dict[str, Any],
        version: str | None = None,
        time_budget_s: float | None = None,
    ) -> dict[str, Any]:
        """Launch (or resume) the stage's job, wait for it and return the stage's output."""
        version = version or str(event.get("version") or "")
        if not version:
            raise ValidationError("a training job needs the pipeline version (event['version'])")
        job = self.launch(stage, event, version)
        return self.result(job, self.wait(job, time_budget_s))


class LocalContainer:
    """What the training container does, run in-process (local stack: moto runs no containers)."""

    def __init__(self, settings: Settings, stages: Mapping[str, Stage] = TRAINING_STAGES) -> None:
        self.settings = settings
        self.stages = dict(stages)

    def __call__(self, job: str, hyperparameters: dict[str, str]) -> None:
        with tempfile.TemporaryDirectory(prefix=f"{job}-") as base:
            config = Path(base) / "input" / "config"
            config.mkdir(parents=True)
            (config / "hyperparameters.json").write_text(json.dumps(hyperparameters), encoding="utf-8")
            try:
                run_job(Path(base), self.settings, stages=self.stages)
            except Exception:  # as in SageMaker: the failure files tell the launcher what went wrong
                log.warning("local training job %s failed", job, exc_info=True)


def run_training_stage(stage: Stage, event: Any, settings: Settings, context: Any = None) -> dict[str, Any]:
    """Run `stage` as a SageMaker training job and follow it for the caller's remaining time (a Lambda's)."""
    budget = None
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        budget = max(0.0, context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_S)
    event = stage.parse_input(event)
    return stage.parse_output(SageMakerLauncher(settings).run(stage.name, event, time_budget_s=budget))
