"""The typed input and output of every pipeline stage: the one definition of what flows between stages.

Each stage's JSON input is validated against its input model before the stage runs, and its output against
its output model before it is returned (to Step Functions, the local runner or a training job), so a malformed
payload fails at the boundary with the field named, not deep inside a stage. Outputs allow extra keys (stages
report statistics that evolve); inputs name everything they read.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from recsys.ids import ID_PATTERN


class Contract(BaseModel):
    """Base of every stage payload: extra keys pass through (Step Functions adds none, but stages may)."""

    model_config = ConfigDict(extra="allow")


class PreprocessingInput(BaseModel):
    """The execution input: where the data comes from and the pipeline configuration overrides."""

    model_config = ConfigDict(extra="forbid")

    job_id: str | None = Field(None, pattern=ID_PATTERN)
    version: str | None = Field(None, pattern=ID_PATTERN)
    source: dict[str, Any] | None = Field(
        None,
        description='{"kind": "synthetic", sizes...} | {"kind": "dataset", "name"} | {"kind": "events", '
        '"base": "production" | source | null, "since", "until", "min_events", "feedback"}',
    )
    config: dict[str, Any] | None = Field(None, description="PipelineConfig overrides")

    @field_validator("source")
    @classmethod
    def _events_source(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if isinstance(value, dict) and value.get("kind") == "events":
            from recsys.data.events_source import EventsSource

            EventsSource.model_validate(value)  # a bad option fails here, naming the field
        return value


class PreprocessingOutput(Contract):
    """Where the preprocessed tables are, and the resolved configuration every later stage uses."""

    job_id: str = Field(pattern=ID_PATTERN)
    version: str = Field(pattern=ID_PATTERN)
    source: dict[str, Any]
    config: dict[str, Any]
    artifacts: dict[str, str] = Field(description="artifact name -> S3 key in artifacts_bucket")
    artifacts_bucket: str
    reference_ts: int | None = None
    stats: dict[str, Any] = Field(default_factory=dict)


class ModelOutput(Contract):
    """A trained model: its files in the models bucket and its training report."""

    model: str
    version: str = Field(pattern=ID_PATTERN)
    models_bucket: str
    artifacts: dict[str, str]
    train: dict[str, Any] = Field(default_factory=dict)


class RankerInput(PreprocessingOutput):
    """The preprocessing output merged with the two-tower output (`States.JsonMerge`)."""

    two_tower: ModelOutput


class FeaturesExportInput(Contract):
    """The preprocessing output (only the job and its feature tables are read)."""

    job_id: str = Field(pattern=ID_PATTERN)
    artifacts: dict[str, str]


class FeaturesExportOutput(Contract):
    job_id: str = Field(pattern=ID_PATTERN)
    updated_at: int
    tables: dict[str, dict[str, Any]]


class EvaluationInput(Contract):
    preprocessing: PreprocessingOutput
    two_tower: ModelOutput
    ranker: ModelOutput


class EvaluationOutput(Contract):
    """Metrics beside the popularity baseline, the gates' verdict, and where the report is."""

    version: str = Field(pattern=ID_PATTERN)
    metrics: dict[str, Any]
    gates: dict[str, Any] = Field(description='{"passed": bool, "checks": [...]}')
    metrics_key: str
    report_key: str
    artifacts_bucket: str | None = None


class RefitInput(EvaluationInput):
    """Everything the evaluation saw, and its verdict (the refit runs only after the gates passed)."""

    version: str | None = Field(
        None, pattern=ID_PATTERN, description="the run's version (names a training job)"
    )
    evaluation: EvaluationOutput


class RefitOutput(Contract):
    """The refit two-tower (same version, files replaced), the served sources and the served choice."""

    version: str = Field(pattern=ID_PATTERN)
    two_tower: ModelOutput
    sources: dict[str, Any] = Field(description='{"key", "models_bucket", "info"}: sources.npz of all data')
    served: str = Field(description="ranker or one source's name: what serving orders candidates by")


class DeploymentInput(EvaluationInput):
    evaluation: EvaluationOutput
    refit: RefitOutput | None = None


class DeploymentOutput(Contract):
    version: str = Field(pattern=ID_PATTERN)
    status: str
    previous_version: str | None = None


class PrecomputeInput(BaseModel):
    """The version just deployed, and what to precompute for it (the step after Deployment)."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(pattern=ID_PATTERN)
    k: int = Field(20, ge=1, le=100)
    max_users: int | None = Field(None, ge=1, description="The most active users first; None: every user")


class PrecomputeOutput(Contract):
    """How many users' recommendations were stored for GET /cached, or why none were."""

    version: str = Field(pattern=ID_PATTERN)
    status: str = Field(description='"filled", or "skipped" when production moved on')
    users: int = Field(ge=0)
    k: int
    seconds: float
