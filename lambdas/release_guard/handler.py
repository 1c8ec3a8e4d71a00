"""Release guard Lambda: EventBridge sends it API alarm state changes and a schedule; it may roll production back
(recsys.release_guard)."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recsys.config import load_settings
from recsys.release_guard import on_event

settings = load_settings()
logger = Logger(service="release_guard")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return on_event(settings, event, now_s=time.time()).to_dict()
