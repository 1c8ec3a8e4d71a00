"""Processing Lambda: Kinesis interaction events -> user activity, video counters, cache invalidation.

Failed records are reported back (partial batch response) so that only they are retried; the event
source mapping needs `function_response_types = ["ReportBatchItemFailures"]`.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from recsys.config import load_settings
from recsys.events import EventConsumer

logger = Logger(service="recsys-event-processor")
tracer = Tracer(service="recsys-event-processor")
metrics = Metrics(namespace="RecSys", service="recsys-event-processor")
processor = BatchProcessor(event_type=EventType.KinesisDataStreams)
consumer = EventConsumer(load_settings())


def record_handler(record: KinesisStreamRecord) -> dict:
    item = consumer.process(record.kinesis.data_as_json())
    metrics.add_metric(name="EventsProcessed", unit=MetricUnit.Count, value=1)
    return item


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict, context: object) -> dict:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
