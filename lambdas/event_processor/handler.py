"""Processing Lambda: Kinesis interaction events -> the online stores, exactly once per event id.

`recsys.event_processing` applies the batch (activity, user and video features, the user's engaged set, the
inference tracking item each event answers) and reports failed records through a Powertools BatchProcessor
(the event source mapping has `function_response_types = ["ReportBatchItemFailures"]`). Malformed records
go to the raw-events bucket's dead-letter prefix and never block their batch.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

from recsys.config import load_settings
from recsys.event_processing import EventApplier, handle_kinesis_event
from recsys.serving.cache import RecommendationCache

logger = Logger(service="recsys-event-processor")
tracer = Tracer(service="recsys-event-processor")
metrics = Metrics(namespace="RecSys", service="recsys-event-processor")
processor = BatchProcessor(event_type=EventType.KinesisDataStreams)
settings = load_settings()
applier = EventApplier(settings, cache=RecommendationCache(settings))


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict, context: object) -> dict:
    return handle_kinesis_event(event, applier, processor, context)
