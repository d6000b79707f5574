"""NotifierFunction: MailQueue -> SES. Each message is sent once, whatever SQS redelivers.

The send is idempotent on the mail id (the record holds the id and the outcome, no address). What
follows it, recording a breach notice as sent, runs outside that record: if it fails, the message
comes back, the stored outcome is reused and only the bookkeeping is tried again. A failed send
comes back after the next step of rightsdesk.notify's retry schedule; the last allowed attempt marks
its notice failed and lets the message go to the dead-letter queue. Suppressed addresses are
counted, never retried.
"""

from __future__ import annotations

import json
import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsdesk import handler_support, notify, suppression
from rightsdesk.config import settings

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)

# SES's send rate shared by at most NOTIFIER_CONCURRENCY instances (docs/notices.md, "Send rate").
pacer = notify.Pacer(float(os.environ.get("SES_MAX_SEND_RATE") or 0), int(os.environ.get("NOTIFIER_CONCURRENCY") or 1))
MAX_ATTEMPTS = int(os.environ.get("MAIL_MAX_ATTEMPTS") or notify.DEFAULT_MAX_ATTEMPTS)


# The suppressed addresses among this invocation's batch, looked up once (rightsdesk.suppression).
batch_suppressed: set[str] | None = None


def send_once(message: dict) -> dict:
    return notify.send(notify.MailMessage.from_body(message), pacer, batch_suppressed)


# Keyed on mail_id only: the idempotency record holds a hash of the id and the SES message id, no address.
# Records are keyed on send_once's module and name: rename neither.
_idempotent_send = handler_support.IdempotentOnFirstUse(send_once, data_keyword_argument="message",
                                                        event_key_jmespath="mail_id",
                                                        expires_after_seconds=7 * 24 * 3600)


def _come_back_after(record: SQSRecord, seconds: int) -> None:
    handler_support.come_back_after(settings().mail_queue_url, record.receipt_handle, seconds)


class NoTimeLeft(Exception):
    """Pacing made the batch longer than this invocation has left: the rest comes back at once."""


def record_handler(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    body = json.loads(record.body)
    message = notify.MailMessage.from_body(body)
    attempt = int(record.attributes.approximate_receive_count or 1)
    where = {"mail_id": message.mail_id, "template": message.template, "attempt": attempt}
    if lambda_context is not None and lambda_context.get_remaining_time_in_millis() < (pacer.interval + 5) * 1000:
        _come_back_after(record, 0)
        raise NoTimeLeft(message.mail_id)
    try:
        result = _idempotent_send(message=body)
    except Exception as error:
        final = attempt >= MAX_ATTEMPTS
        # The type only: messages of library errors can quote the address they choked on.
        logger.warning("mail not sent", extra={**where, "error_type": type(error).__name__, "final": final})
        if final:
            notify.settle(message, notify.FAILED)
            metrics.add_metric(name="MailFailed", unit=MetricUnit.Count, value=1)
        else:
            _come_back_after(record, notify.retry_delay(attempt))
            metrics.add_metric(name="MailRetried", unit=MetricUnit.Count, value=1)
        raise
    outcome = result.get("result", notify.SENT)
    notify.settle(message, outcome)
    logger.info("mail done", extra={**where, "result": outcome})
    metrics.add_metric(name="MailSuppressed" if outcome == notify.SUPPRESSED else "MailSent", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    global batch_suppressed
    _idempotent_send.register_lambda_context(context)
    batch_suppressed = _suppressed_in(event)
    try:
        return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    finally:
        batch_suppressed = None


def _suppressed_in(event: dict) -> set[str] | None:
    """None (each send looks for itself) if the lookup fails or a body is unreadable: those records
    fail on their own in record_handler."""
    try:
        messages = [notify.MailMessage.from_body(json.loads(r["body"])) for r in event.get("Records") or []]
        return suppression.suppressed_among([m.to for m in messages if notify.suppressible(m)])
    except Exception as error:  # noqa: BLE001 - an optimisation only; never fail the batch for it
        logger.warning("batch suppression lookup failed", extra={"error_type": type(error).__name__})
        return None
