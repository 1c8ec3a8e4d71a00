"""Feature ingestion Lambda: exports the run's features to the offline store (recsys.stages.features_export)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recsys.config import get_settings
from recsys.stages.features_export import run

logger = Logger(service="feature_ingestion")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run(event, get_settings())
