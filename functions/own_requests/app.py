"""OwnRequestsFunction: the RightsTable's stream -> requests about the operator's own data, carried out.

The event source's FilterCriteria lets through only the write that moves a request from verified
to in_progress, which the dispatcher makes for controllers with delivery `internal` alone
(rightsdesk.outbound.dispatch); rightsdesk.own_data.own_requests does the rest. Each record names its request by key;
the handler reads the request itself, so a retry acts on what is stored now. Nothing here logs an
image: they hold personal data.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsdesk.own_data import own_requests
from rightsdesk.store.items.requests import RequestItem

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> None:
    request_id = RequestItem.named_by(record.dynamodb.keys if record.dynamodb else {})
    if request_id is None:
        return  # not a request (the filter should not have let it through)
    outcome = own_requests.carry_out(request_id)
    logger.info("own request handled", extra={"request_id": request_id, "outcome": outcome})
    metrics.add_metric(name=f"OwnRequest_{outcome}", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
