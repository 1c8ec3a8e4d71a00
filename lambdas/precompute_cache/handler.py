"""PrecomputeCache Lambda: the step after Deployment; stores the new version's recommendations for GET /cached.

The stage, its typed input and output, come from `recsys.stages.table` (stage "precompute_cache").
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recsys.config import load_settings
from recsys.pipeline.invoke import invoke_stage

settings = load_settings()
logger = Logger(service="precompute_cache")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return invoke_stage("precompute_cache", event, settings, context)
