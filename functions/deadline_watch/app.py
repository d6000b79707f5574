"""DeadlineWatchFunction: what keeps every verified request moving.

- From the table's stream (the `Verified` mapping, filtered to the write that moves a request from
  identity_unverified to verified): the request's routing and its confirmation mail are queued
  (rightsdesk.routing.follow_up). Each record names its request by key only; no image is read.
- Hourly: deadline notices to controllers, and re-routing of any request still left verified.
  The rules are in rightsdesk.routing.deadline_watch.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsdesk.notices import breach_watch
from rightsdesk.routing import deadline_watch, follow_up
from rightsdesk.store.items.requests import RequestItem

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def verified_record(record: DynamoDBRecord) -> None:
    request_id = RequestItem.named_by(record.dynamodb.keys if record.dynamodb else {})
    if request_id is None:
        return  # not a request (the filter should not have let it through)
    follow_up.follow_up(request_id)
    metrics.add_metric(name="VerifiedFollowedUp", unit=MetricUnit.Count, value=1)


def hourly() -> dict:
    report = deadline_watch.run().as_dict()
    report["breaches"] = breach_watch.run().as_dict()  # operators warned of breach deadlines
    logger.info("deadline watch done", extra=report)
    for notice, count in report["notices"].items():
        metrics.add_metric(name=f"DeadlineNotice_{notice}", unit=MetricUnit.Count, value=count)
    metrics.add_metric(name="RequestsRerouted", unit=MetricUnit.Count, value=report["rerouted"])
    # Levels, not events: the OverdueRequests and BreachDeadlineAtRisk alarms watch their maximum.
    metrics.add_metric(name="OverdueRequests", unit=MetricUnit.Count, value=report["overdue"])
    metrics.add_metric(name="BreachDeadlineAtRisk", unit=MetricUnit.Count, value=report["breaches"]["at_risk"])
    return report


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if isinstance(event, dict) and event.get("Records"):
        return dict(
            process_partial_response(event=event, record_handler=verified_record, processor=processor, context=context)
        )
    return hourly()
