"""Quality monitor Lambda: daily (EventBridge schedule) and after each pipeline run, one quality point (recsys.quality_monitor)."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recsys.config import load_settings
from recsys.quality_monitor import run

settings = load_settings()
logger = Logger(service="quality_monitor")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run(settings, now_s=time.time()).to_dict()
