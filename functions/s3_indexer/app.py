"""S3IndexerFunction: the optional S3 index (rightsdesk.connectors.s3_index), kept from the object
notifications of the operator's buckets that arrive on S3IndexQueue.

Each message is S3's own notification (from the bucket's notification configuration) or an S3
EventBridge event a rule forwarded; each object it names is synced in every connector indexing that
bucket, through the connector's role. A sync reads the object as it is now, so a redelivered or late
message is harmless; a failed one comes back after the queue's visibility timeout and, after its
receives, goes to the dead-letter queue (alarmed). Logs name counts and outcomes, never a bucket's
object key (keys may embed ids).
"""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


def _record(record: SQSRecord) -> None:
    # Definitions (pydantic) and the connectors load with the first message, not at cold start.
    from rightsdesk.connectors import s3_index

    try:
        message = json.loads(record.body)
    except ValueError:
        logger.warning("not a notification; dropped")  # it can never be read: retrying buys nothing
        return
    counts = s3_index.handle(s3_index.object_events(message))
    for outcome, count in counts.items():
        metrics.add_metric(name=f"S3Index{outcome.capitalize()}", unit=MetricUnit.Count, value=count)
    logger.info("objects synced", extra={"outcomes": counts})


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=_record, processor=processor, context=context)
