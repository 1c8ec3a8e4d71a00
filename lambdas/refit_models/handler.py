"""Refit Lambda: refits the candidate sources and the two-tower on all data, in-process, or as a SageMaker job where the environment says so.

The stage, its typed input and output, come from `recsys.stages.table` (stage "refit").
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recsys.config import load_settings
from recsys.pipeline.invoke import invoke_stage

settings = load_settings()
logger = Logger(service="refit_models")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return invoke_stage("refit", event, settings, context)
