"""Deployment Lambda: the pipeline's last stage; registers, publishes and promotes the evaluated version."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recsys.config import get_settings
from recsys.stages import deployment

logger = Logger(service="deployment")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return deployment.run(event, get_settings())
