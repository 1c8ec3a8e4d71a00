"""The one table of pipeline stages: name, catalogue function, module, typed input and output.

Every way of running a stage goes through it: the Lambda handlers (`lambdas/<function>/handler.py`), the local
pipeline runner (the state machine's Tasks name catalogue functions) and the training-job entry point.
`Stage.run` validates the input, runs `recsys.stages.<module>.run(event, settings)` and validates the output.
Stage modules are imported on first use, so a handler never loads another stage's libraries.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from recsys.errors import ValidationError
from recsys.stages import contracts as c

if TYPE_CHECKING:
    from recsys.config import Settings


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline."""

    name: str
    function: str  # the catalogue function (recsys/resources/catalog.json) that runs it on AWS
    module: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    training_job: bool = False  # may run as a SageMaker training job where the environment trains there

    def parse_input(self, event: Any) -> dict[str, Any]:
        """The input as JSON-ready data, validated (a ValidationError names the bad fields)."""
        return _validated(
            self.input_model, event, f"the {self.name} stage input", "pass the previous stage's output"
        )

    def parse_output(self, result: Any) -> dict[str, Any]:
        """The output, validated: a stage that breaks its contract fails here, not in the next stage."""
        return _validated(
            self.output_model, result, f"the {self.name} stage output", "this is a bug in the stage"
        )

    def run(self, event: Any, settings: Settings) -> dict[str, Any]:
        """Validate, run in this process, validate."""
        run = importlib.import_module(self.module).run
        return self.parse_output(run(self.parse_input(event), settings))


def _validated(model: type[BaseModel], value: Any, what: str, hint: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be a JSON object, got {type(value).__name__}", hint=hint)
    try:
        model.model_validate(value)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise ValidationError(f"{what} is invalid: {problems}", hint=hint) from None
    return value


STAGES: dict[str, Stage] = {
    s.name: s
    for s in (
        Stage("preprocessing", "preprocessing", "recsys.stages.preprocessing",
              c.PreprocessingInput, c.PreprocessingOutput),
        Stage("two_tower", "train_two_tower", "recsys.stages.two_tower",
              c.PreprocessingOutput, c.ModelOutput, training_job=True),
        Stage("ranker", "train_ranker", "recsys.stages.ranker",
              c.RankerInput, c.ModelOutput, training_job=True),
        Stage("features_export", "feature_ingestion", "recsys.stages.features_export",
              c.FeaturesExportInput, c.FeaturesExportOutput),
        Stage("evaluation", "evaluation", "recsys.stages.evaluation",
              c.EvaluationInput, c.EvaluationOutput),
        Stage("refit", "refit_models", "recsys.stages.refit",
              c.RefitInput, c.RefitOutput, training_job=True),
        Stage("deployment", "deployment", "recsys.stages.deployment",
              c.DeploymentInput, c.DeploymentOutput),
        Stage("precompute_cache", "precompute_cache", "recsys.stages.precompute_cache",
              c.PrecomputeInput, c.PrecomputeOutput),
    )
}  # fmt: skip
BY_FUNCTION: dict[str, Stage] = {s.function: s for s in STAGES.values()}


def stage(name: str) -> Stage:
    """The stage called `name`, or a ValidationError listing the stages."""
    try:
        return STAGES[name]
    except KeyError:
        raise ValidationError(f"unknown pipeline stage {name!r}", hint=f"one of {sorted(STAGES)}") from None


def stage_for_function(function: str) -> Stage:
    """The stage a catalogue function runs."""
    try:
        return BY_FUNCTION[function]
    except KeyError:
        raise ValidationError(
            f"catalogue function {function!r} runs no pipeline stage", hint=f"one of {sorted(BY_FUNCTION)}"
        ) from None
