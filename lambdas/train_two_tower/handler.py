"""Two-tower training Lambda: trains in-process, or as a SageMaker job where the environment says so.

The stage, its typed input and output, come from `recsys.stages.table` (stage "two_tower").
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recsys.config import load_settings
from recsys.pipeline.invoke import invoke_stage

settings = load_settings()
logger = Logger(service="train_two_tower")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return invoke_stage("two_tower", event, settings, context)
