"""The webhook side of breach notices and policy changes (`breach.notice`, `policy.updated`):
the event's data, whether it went out before, and where its outcome is recorded. rightsdesk.outbound.dispatch
sends them; this module knows the breach and policy records, which the rest of the dispatcher
does not need.
"""

from __future__ import annotations

import logging

from rightsdesk.notices import breaches, policies
from rightsdesk.platform import webhooks
from rightsdesk.routing.delivery import DeliveryMessage
from rightsdesk.store.items.controllers import ControllerItem

log = logging.getLogger("rightsdesk.outbound.dispatch")  # part of the delivery log, with its own lines

DELIVERED, DISABLED, FAILED = breaches.DELIVERED, breaches.DISABLED, breaches.FAILED


def delivered_before(message: DeliveryMessage) -> bool:
    """A breach notice says when its webhook was delivered, so a message redelivered after the
    idempotency record is gone (or never written: a crash) is not sent twice. A policy event has no
    such record of its own; its idempotency record is what answers a redelivery."""
    if message.event != webhooks.EVENT_BREACH_NOTICE:
        return False
    outcome = breaches.webhook_outcome(str(message.incident_id), str(message.controller_id))
    return outcome == breaches.DELIVERED


def data(message: DeliveryMessage) -> dict:
    if message.event == webhooks.EVENT_BREACH_NOTICE:
        return breaches.webhook_data(str(message.incident_id), str(message.controller_id))
    return policies.webhook_data(str(message.doc), str(message.version))


def record(message: DeliveryMessage, controller: ControllerItem, outcome: str, cause: str) -> None:
    """A controller event's outcome where the operator looks for it: the breach notice, or the
    controller's audit trail for a policy version."""
    if message.event == webhooks.EVENT_BREACH_NOTICE:
        changed = breaches.record_webhook(str(message.incident_id), controller.controller_id, outcome, cause=cause)
    else:
        policies.record_webhook(controller, str(message.doc), str(message.version), outcome, cause=cause)
        changed = True
    log.info(
        "controller event",
        extra={
            "controller_id": controller.controller_id,
            "event_type": message.event,
            "outcome": outcome,
            "cause": cause,
            "recorded": changed,
            "incident_id": message.incident_id,
            "doc": message.doc,
            "version": message.version,
        },
    )
