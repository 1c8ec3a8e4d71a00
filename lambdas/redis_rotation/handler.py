"""Redis auth-token rotation Lambda: Secrets Manager calls it four times per rotation (recsys.redis_rotation)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recsys.aws import client
from recsys.config import load_settings
from recsys.redis_rotation import ElastiCacheTokens, RedisTokenRotation

settings = load_settings()
logger = Logger(service="redis_rotation")
rotation = RedisTokenRotation(
    client("secretsmanager", settings), ElastiCacheTokens(client("elasticache", settings))
)


@logger.inject_lambda_context(
    log_event=False
)  # the event names the secret, never its value; still not logged
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    return rotation.handle(event)
