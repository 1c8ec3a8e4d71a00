"""Run one pipeline stage where its environment runs it: in this process, or as a SageMaker training job.

The Lambda handlers and the local pipeline runner call `invoke_stage`; stages come from `recsys.stages.table`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from recsys.pipeline.sagemaker import run_training_stage
from recsys.stages.table import Stage, stage

if TYPE_CHECKING:
    from recsys.config import Settings


def run_where_configured(
    chosen: Stage, event: Any, settings: Settings, context: Any = None
) -> dict[str, Any]:
    """Validate the input, run the stage, validate and return its output.

    Training stages run as SageMaker jobs where `settings.profile.training_backend == "sagemaker"`, followed
    for the Lambda's remaining time (`context`); everything else runs in this process.
    """
    if chosen.training_job and settings.profile.training_backend == "sagemaker":
        return run_training_stage(chosen, event, settings, context)
    return chosen.run(event, settings)


def invoke_stage(name: str, event: Any, settings: Settings, context: Any = None) -> dict[str, Any]:
    """Run the stage called `name` where the settings say (what each stage's Lambda handler does)."""
    return run_where_configured(stage(name), event, settings, context)
