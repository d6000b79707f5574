"""NotifierFunction: MailQueue -> SES. Each message is sent once, whatever SQS redelivers."""

from __future__ import annotations

import json
import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsdesk import notify

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)

persistence = DynamoDBPersistenceLayer(table_name=os.environ.get("IDEMPOTENCY_TABLE", "rightsdesk-idempotency"))
# Keyed on mail_id only: the idempotency record holds a hash of the id and the SES message id, no address.
idempotency = IdempotencyConfig(event_key_jmespath="mail_id", expires_after_seconds=7 * 24 * 3600)


@idempotent_function(data_keyword_argument="message", persistence_store=persistence, config=idempotency)
def send_once(message: dict) -> dict:
    return notify.send(notify.MailMessage.from_body(message))


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    message = json.loads(record.body)
    result = send_once(message=message)
    logger.info("mail sent", extra={"mail_id": result["mail_id"], "template": message.get("template")})
    metrics.add_metric(name="MailSent", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    idempotency.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
