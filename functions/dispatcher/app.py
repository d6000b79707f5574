"""DispatcherFunction: DeliveryQueue -> controllers (signed webhook, email or pull), with retries.

A failed delivery stays on the queue: this handler sets the message's visibility timeout to the
next step of the retry schedule (rightsdesk.routing.delivery) and reports it as a batch item failure, so
only that message comes back, when its time has come. A redelivered message that already
succeeded is answered from the idempotency record, keyed on the delivery id (no personal data).
"""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsdesk.kernel import retention
from rightsdesk.outbound import dispatch
from rightsdesk.platform import config, handler_support
from rightsdesk.platform.config import settings
from rightsdesk.routing import delivery

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)

# The DeliveryQueue's maxReceiveCount: the receive that may not fail without giving up.
MAX_ATTEMPTS = config.delivery_max_attempts(delivery.DEFAULT_MAX_ATTEMPTS)


def dispatch_once(*, key: dict, message: delivery.DeliveryMessage, attempt: int) -> dict:
    return dispatch.dispatch(message, attempt=attempt, max_attempts=MAX_ATTEMPTS)


# Keyed on the delivery id; the stored answer is ids and outcome words, never request content.
# Records are keyed on dispatch_once's module and name: rename neither.
_idempotent_dispatch = handler_support.IdempotentOnFirstUse(
    dispatch_once,
    data_keyword_argument="key",
    event_key_jmespath="delivery_id",
    expires_after_seconds=retention.keep_seconds(retention.Rule.IDEMPOTENT_QUEUE_MESSAGE),
)


def _come_back_after(record: SQSRecord, seconds: int) -> None:
    handler_support.come_back_after(settings().delivery_queue_url, record.receipt_handle, seconds)


def record_handler(record: SQSRecord) -> None:
    attempt = int(record.attributes.approximate_receive_count or 1)
    try:
        message = delivery.DeliveryMessage.from_body(json.loads(record.body), message_id=record.message_id)
    except (ValueError, TypeError, AttributeError):
        # Retrying cannot fix it: back at once, so it reaches the dead-letter queue quickly.
        _come_back_after(record, 0)
        logger.error("malformed delivery message", extra={"message_id": record.message_id})
        raise
    # Ids only; the controller events (breach.notice, policy.updated) name no request but these.
    about = ("request_id", "controller_id", "incident_id", "doc", "version", "signal_id")
    ids = {name: getattr(message, name) for name in about}
    where = {
        "delivery_id": message.delivery_id,
        "event": message.event,
        "attempt": attempt,
        **{name: value for name, value in ids.items() if value},
    }
    try:
        result = _idempotent_dispatch(key=message.key(), message=message, attempt=attempt)
    except delivery.RetryLater as failed:
        _come_back_after(record, failed.delay)
        final = isinstance(failed, delivery.Exhausted)
        logger.warning(
            "delivery failed", extra={**where, "cause": failed.cause, "retry_in_seconds": failed.delay, "final": final}
        )
        metrics.add_metric(name="DeliveryExhausted" if final else "DeliveryRetried", unit=MetricUnit.Count, value=1)
        raise
    except Exception as error:
        _come_back_after(record, delivery.retry_delay(attempt))
        # The type only: messages of library errors can quote the data they choked on.
        logger.error("delivery error", extra={**where, "error_type": type(error).__name__})
        raise
    logger.info("delivery done", extra={**where, "result": result.get("result"), "via": result.get("via")})
    metrics.add_metric(name="DeliveryDone", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    _idempotent_dispatch.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
