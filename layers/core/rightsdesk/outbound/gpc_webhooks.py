"""The webhook side of a forwarded Global Privacy Control signal (`consent.gpc`), in the shape
rightsdesk.outbound.dispatch asks of a controller event: its data, whether it went out before, and
where its outcome is recorded (on the signal item, rightsdesk.audience.gpc).

Only webhook controllers get the event: an email or pull controller forwarded the signal itself
and had the record in the API's answer; a mail would add nothing (docs/decisions.md).
"""

from __future__ import annotations

import logging

from rightsdesk.audience import gpc
from rightsdesk.routing.delivery import DeliveryMessage
from rightsdesk.store.items.controllers import ControllerItem

log = logging.getLogger("rightsdesk.outbound.dispatch")

DELIVERED, DISABLED, FAILED = gpc.DELIVERED, gpc.DISABLED, gpc.FAILED


def delivered_before(message: DeliveryMessage) -> bool:
    return gpc.delivered_before(str(message.signal_id))


def data(message: DeliveryMessage) -> dict:
    return gpc.webhook_data(str(message.signal_id), str(message.controller_id))


def record(message: DeliveryMessage, controller: ControllerItem, outcome: str, cause: str) -> None:
    gpc.record_webhook(str(message.signal_id), outcome)
    log.info(
        "controller event",
        extra={
            "controller_id": controller.controller_id,
            "event_type": message.event,
            "outcome": outcome,
            "cause": cause,
            "signal_id": message.signal_id,
        },
    )
