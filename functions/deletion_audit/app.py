"""DeletionAuditFunction: the RightsTable's stream -> one audit event per deletion or purge.

The event source's FilterCriteria lets through only REMOVEs of items under a retention rule and
MODIFYs in which `personal_purged_at` appears, so audit events (which carry no rule) never cause
more audit events. The cause is read from the record (rightsdesk.store.deletion); this module only turns
the stream's shapes into plain values. Nothing here logs an image: they hold personal data.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsdesk.store import deletion

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)

TTL_PRINCIPAL = "dynamodb.amazonaws.com"


def by_ttl_service(record: DynamoDBRecord) -> bool:
    """DynamoDB's TTL deletes as the service itself; a user's or role's delete names them instead."""
    identity = record.user_identity
    return identity.get("type") == "Service" and identity.get("principalId") == TTL_PRINCIPAL


def change_of(record: DynamoDBRecord) -> deletion.Change | None:
    stream = record.dynamodb
    if stream is None:
        return None
    if record.event_name is DynamoDBRecordEventName.REMOVE:
        kind = deletion.DELETED
    elif record.event_name is DynamoDBRecordEventName.MODIFY:
        kind = deletion.PURGED
        if stream.old_image.get("personal_purged_at") or not stream.new_image.get("personal_purged_at"):
            return None  # not the write that purged (the filter should not have let it through)
    else:
        return None
    keys = stream.keys
    return deletion.Change(
        kind=kind,
        pk=str(keys["pk"]),
        sk=str(keys["sk"]),
        event_id=str(record.event_id),
        by_ttl_service=by_ttl_service(record),
        old=stream.old_image,
        new=stream.new_image,
        seen_at=stream.approximate_creation_date_time,
    )


def record_handler(record: DynamoDBRecord) -> None:
    change = change_of(record)
    if change is None:
        return
    event = deletion.record(change)
    if event is None:
        logger.info("deletion already audited", extra={"item_kind": change.sk.split("#", 1)[0]})
        metrics.add_metric(name="AlreadyAudited", unit=MetricUnit.Count, value=1)
        return
    logger.info(
        "deletion audited",
        extra={"action": event.action, "cause": event.cause, "rule": event.rule, "item_kind": event.item_kind},
    )
    metrics.add_metric(name=f"Audited_{event.action}_{event.cause}", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
