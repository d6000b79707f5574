"""SesEventsFunction: SES bounce and complaint events of our configuration set (through EventBridge)
mark the address suppressed, and a permanent bounce of a request's forwarding mail turns the
request delivered -> delivery_failed and alerts the operator (metric DeliveryBounced, its alarm).
The rules are in rightsdesk.audience.suppression and rightsdesk.routing.delivery; nothing here logs an address."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsdesk.audience import suppression
from rightsdesk.routing import delivery

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict:
    report = suppression.record_ses_event(event.detail)
    undelivered = delivery.record_bounce(event.detail)
    logger.info(
        "ses event",
        extra={
            "event_type": report.event_type,
            "suppressed": report.suppressed,
            "ignored": report.ignored,
            "undelivered_request_id": undelivered,
        },
    )
    if undelivered:
        metrics.add_metric(name="DeliveryBounced", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="SesEventReceived", unit=MetricUnit.Count, value=1)
    if report.suppressed:
        metrics.add_metric(name="AddressSuppressed", unit=MetricUnit.Count, value=report.suppressed)
    return {
        "event_type": report.event_type,
        "suppressed": report.suppressed,
        "ignored": report.ignored,
        "undelivered": undelivered,
    }
