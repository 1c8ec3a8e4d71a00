"""Recommendation API Lambda: API Gateway (REST) -> recsys.serving (routes, validation, errors in recsys)."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths

from recsys.config import load_settings
from recsys.serving.api import create_app
from recsys.serving.service import RecommendationService

logger = Logger(service="recsys-api")
tracer = Tracer(service="recsys-api")
metrics = Metrics(namespace="RecSys", service="recsys-api")
app = create_app(RecommendationService(load_settings()), metrics)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
