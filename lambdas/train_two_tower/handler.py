"""Two-tower training Lambda: trains in-process, or as a SageMaker job where the environment says so."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recsys.config import get_settings
from recsys.pipeline.sagemaker import run_stage

logger = Logger(service="train_two_tower")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_stage("two_tower", event, get_settings(), context)
