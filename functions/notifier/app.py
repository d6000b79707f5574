"""NotifierFunction: MailQueue -> SES. Each message is sent once, whatever SQS redelivers.

A message names a mail kind and ids; the mail is made from the table now (rightsdesk.outbound.mail_kinds),
and dropped (counted, not retried) if there is nothing to send any more. The send is idempotent on
the mail id (the record holds the id and the outcome, no address). What follows it, recording a
breach notice as sent or a request as delivered by email, runs outside that record: if it fails, the message
comes back, the stored outcome is reused and only the bookkeeping is tried again. A failed send
comes back after the next step of rightsdesk.outbound.notify's retry schedule (notify.after_failure decides); the last allowed attempt marks
its notice failed (or its request delivery_failed) and lets the message go to the dead-letter queue. Suppressed addresses are
counted, never retried.
"""

from __future__ import annotations

import functools
import json

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsdesk.kernel import retention
from rightsdesk.outbound import notify
from rightsdesk.platform import config, handler_support
from rightsdesk.platform.config import settings

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)

# SES's send rate shared by at most NOTIFIER_CONCURRENCY instances (docs/notices.md, "Send rate").
pacer = notify.Pacer(config.ses_max_send_rate(), config.notifier_concurrency())
MAX_ATTEMPTS = config.mail_max_attempts(notify.DEFAULT_MAX_ATTEMPTS)


def send_once(message: dict, batch: notify.Batch | None = None) -> dict:
    parsed = notify.MailMessage.from_body(message)
    return batch.send(parsed, pacer) if batch is not None else notify.send(parsed, pacer)


# Keyed on mail_id only: the idempotency record holds a hash of the id and the SES message id, no address.
# Records are keyed on send_once's module and name: rename neither.
_idempotent_send = handler_support.IdempotentOnFirstUse(
    send_once,
    data_keyword_argument="message",
    event_key_jmespath="mail_id",
    expires_after_seconds=retention.keep_seconds(retention.Rule.IDEMPOTENT_QUEUE_MESSAGE),
)


def _come_back_after(record: SQSRecord, seconds: int) -> None:
    handler_support.come_back_after(settings().mail_queue_url, record.receipt_handle, seconds)


class NoTimeLeft(Exception):
    """Pacing made the batch longer than this invocation has left: the rest comes back at once."""


def record_handler(
    record: SQSRecord, lambda_context: LambdaContext | None = None, *, batch: notify.Batch | None = None
) -> None:
    try:
        body = json.loads(record.body)
        message = notify.MailMessage.from_body(body)
    except (ValueError, TypeError, KeyError, AttributeError):
        # Retrying cannot fix it: back at once, so it reaches the dead-letter queue quickly.
        _come_back_after(record, 0)
        logger.error("malformed mail message", extra={"message_id": record.message_id})
        raise
    attempt = int(record.attributes.approximate_receive_count or 1)
    where = {"mail_id": message.mail_id, "kind": message.kind, "attempt": attempt}
    if lambda_context is not None and lambda_context.get_remaining_time_in_millis() < (pacer.interval + 5) * 1000:
        _come_back_after(record, 0)
        raise NoTimeLeft(message.mail_id)
    try:
        result = _idempotent_send(message=body, batch=batch)
    except Exception as error:
        retry_in = notify.after_failure(message, attempt=attempt, max_attempts=MAX_ATTEMPTS)
        # The type only: messages of library errors can quote the address they choked on.
        logger.warning("mail not sent", extra={**where, "error_type": type(error).__name__, "final": retry_in is None})
        if retry_in is None:
            metrics.add_metric(name="MailFailed", unit=MetricUnit.Count, value=1)
        else:
            _come_back_after(record, retry_in)
            metrics.add_metric(name="MailRetried", unit=MetricUnit.Count, value=1)
        raise
    outcome = result.get("result", notify.SENT)
    notify.record_outcome(message, outcome)
    logger.info("mail done", extra={**where, "result": outcome})
    metrics.add_metric(name=OUTCOME_METRICS.get(outcome, "MailSent"), unit=MetricUnit.Count, value=1)


OUTCOME_METRICS = {
    notify.SENT: "MailSent",
    notify.SUPPRESSED: "MailSuppressed",
    # nothing to send any more: the record was gone or purged when the mail's turn came
    notify.DROPPED: "MailDropped",
}


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    _idempotent_send.register_lambda_context(context)
    # This invocation's batch goes to each record as an argument, never through a module global
    # that a later invocation of the same instance could still see.
    handle = functools.partial(record_handler, batch=_made_in(event))
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)


def _made_in(event: dict) -> notify.Batch | None:
    """The batch's mails made at once and their suppressed addresses looked up once
    (rightsdesk.outbound.notify.resolve_batch); None: each send makes its mail and looks up for
    itself, if a lookup fails or a body is unreadable (those records fail on their own)."""
    try:
        messages = [notify.MailMessage.from_body(json.loads(r["body"])) for r in event.get("Records") or []]
        return notify.Batch(*notify.resolve_batch(messages))
    except Exception as error:  # noqa: BLE001 - an optimisation only; never fail the batch for it
        logger.warning("batch lookup failed", extra={"error_type": type(error).__name__})
        return None
