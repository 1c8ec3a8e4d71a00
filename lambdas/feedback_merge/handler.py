"""Feedback merge Lambda: run daily by EventBridge; merges the previous day (or `{"date": "YYYY-MM-DD"}`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recsys.config import get_settings
from recsys.feedback import merge_feedback

logger = Logger(service="feedback-merge")


def _day(event: dict[str, Any]) -> date:
    if event.get("date"):
        return date.fromisoformat(str(event["date"]))
    now = (
        datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
        if event.get("time")
        else datetime.now(UTC)
    )
    return (now - timedelta(days=1)).date()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return merge_feedback(get_settings(), _day(event)).to_dict()
