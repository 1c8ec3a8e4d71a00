"""Feedback merge Lambda: run daily by EventBridge; merges the previous day (or `{"date": "YYYY-MM-DD"}`)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recsys.config import load_settings
from recsys.feedback import day_to_merge, merge_feedback

settings = load_settings()
logger = Logger(service="feedback-merge")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return merge_feedback(settings, day_to_merge(event)).to_dict()
