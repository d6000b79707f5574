"""The words of delivery to controllers: which events the DeliveryQueue carries, the webhook event
type each becomes, an attempt's outcomes and the delivery log's page sizes.

Words only, no rules: the controller API's delivery routes declare their parameters and answers with
them when the function starts, and load the log itself (rightsdesk.routing.delivery_log) on first use.
"""

from __future__ import annotations

from typing import Literal

from rightsdesk.platform.webhooks import (
    EVENT_BREACH_NOTICE,
    EVENT_CANCELLED,
    EVENT_CONSENT_GPC,
    EVENT_EXECUTED,
    EVENT_FORWARDED,
    EVENT_OVERDUE,
    EVENT_POLICY_UPDATED,
    EVENT_TEST,
)

# Webhook events for one controller, built from the ids the message names (`dsr.request.executed`
# names a request too: the execution of it the controller asked for).
CONTROLLER_EVENTS = (EVENT_BREACH_NOTICE, EVENT_POLICY_UPDATED, EVENT_CONSENT_GPC, EVENT_EXECUTED)
# Every event a DeliveryQueue message may carry (rightsdesk.routing.delivery.DeliveryMessage).
EVENTS = ("route", "cancelled", "overdue", "test", *CONTROLLER_EVENTS)
# The queue message's event -> the webhook event type a controller sees.
EVENT_TYPES = {
    "route": EVENT_FORWARDED,
    "cancelled": EVENT_CANCELLED,
    "overdue": EVENT_OVERDUE,
    "test": EVENT_TEST,
    **{event: event for event in CONTROLLER_EVENTS},
}
EVENT_TYPE_NAMES = tuple(dict.fromkeys(EVENT_TYPES.values()))
EventType = Literal[EVENT_TYPE_NAMES]  # type: ignore[valid-type]

# An attempt's outcome.
DELIVERED, RETRYING, EXHAUSTED, FAILED = "delivered", "retrying", "exhausted", "failed"
OUTCOMES = (DELIVERED, RETRYING, EXHAUSTED, FAILED)
Outcome = Literal[OUTCOMES]  # type: ignore[valid-type]  # the query parameter's and the schema's enum
# What "everything that failed" means to a bulk redelivery: not delivered, whether the queue still
# retries it (after a day's outage most are) or gave up.
NOT_DELIVERED = (RETRYING, EXHAUSTED, FAILED)

# The delivery log's pages.
DEFAULT_PAGE, MAX_PAGE = 50, 100
# One bulk redelivery queues at most this many deliveries (oldest failure first); `more` says to
# call again for the rest.
MAX_BULK_REDELIVERY = 100
