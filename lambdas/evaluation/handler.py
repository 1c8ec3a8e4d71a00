"""Evaluation Lambda: metrics vs the popularity baseline, gates, metrics.json and report.html (recsys.stages.evaluation)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recsys.config import get_settings
from recsys.stages.evaluation import run

logger = Logger(service="evaluation")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run(event, get_settings())
