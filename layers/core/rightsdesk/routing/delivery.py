"""Deliveries to controllers: the queue message, the retry schedule, and the status changes.

A DeliveryQueue message is `{"request_id", "event", ...}`, or for an event about no request
(`breach.notice`, `policy.updated`) `{"event", "controller_id", ...ids}`; it carries no personal
data. Retries
run on the message's SQS visibility timeout: after the n-th failed receive the message comes back
after RETRY_DELAYS_SECONDS[n-1] (the last step repeats); the last allowed attempt marks the request
`delivery_failed` and lets the message go to the dead-letter queue. rightsdesk.outbound.dispatch does the
sending; this module says what a delivery is and records what happened to it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.delivery_mode import DeliveryMode
from rightsdesk.kernel.errors import IllegalTransition
from rightsdesk.kernel.retry import RetrySchedule
from rightsdesk.kernel.status import AWAITING_DELIVERY, Status
from rightsdesk.platform.webhooks import EVENT_BREACH_NOTICE, EVENT_CONSENT_GPC, EVENT_EXECUTED, EVENT_POLICY_UPDATED
from rightsdesk.routing import controller_lookup
from rightsdesk.routing.delivery_words import CONTROLLER_EVENTS, EVENTS
from rightsdesk.store import audit
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.requests import RequestItem
from rightsdesk.store.items.table import transaction
from rightsdesk.store.lifecycle import transition

if TYPE_CHECKING:
    from rightsdesk.platform.operator_identity import Actor

# Why a controller's webhook endpoint is disabled while the controller stays active: it answered 410.
GONE_410 = "gone_410"
# What each controller event (delivery_words.CONTROLLER_EVENTS) names besides the controller (the
# ids its webhook data is built from).
CONTROLLER_EVENT_IDS = {
    EVENT_BREACH_NOTICE: ("incident_id",),
    EVENT_POLICY_UPDATED: ("doc", "version"),
    EVENT_CONSENT_GPC: ("signal_id",),
    EVENT_EXECUTED: ("request_id", "execution_id"),
}
# Controller, incident, policy document and version ids: short words, never free text.
ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
NOTICES = ("due_in_3_days", "due_today")
# The reminders while a request is overdue: `overdue_<n>`, the n-th period after its due date
# (rightsdesk.routing.deadline_watch); each is its own delivery.
OVERDUE_NOTICE = re.compile(r"^overdue_[1-9][0-9]{0,3}$")

# DESIGN.md "Delivery to controllers": 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then 12 h (SQS's maximum
# visibility timeout) until the queue's maxReceiveCount is reached.
RETRY_DELAYS_SECONDS: tuple[int, ...] = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 12 * 3600)
# The DeliveryQueue's RedrivePolicy.maxReceiveCount; the template passes it as DELIVERY_MAX_ATTEMPTS.
DEFAULT_MAX_ATTEMPTS = 12


RETRY_SCHEDULE = RetrySchedule(RETRY_DELAYS_SECONDS)
# Seconds until the next try after failed attempt number `attempt` (1 = the first receive).
retry_delay = RETRY_SCHEDULE.delay


class RetryLater(Exception):
    """This attempt failed; SQS brings the message back after `delay` seconds."""

    def __init__(self, cause: str, delay: int):
        super().__init__(cause)
        self.cause = cause
        self.delay = delay


class Exhausted(RetryLater):
    """The last allowed attempt failed: the message goes on to the dead-letter queue at once."""

    def __init__(self, cause: str):
        super().__init__(cause, 0)


@dataclass(frozen=True)
class DeliveryMessage:
    request_id: str  # "" for `test` and the controller events, which concern no request
    event: str
    controller_id: str | None = None  # for `test` and the controller events
    notice: str | None = None  # for `overdue`: which of NOTICES, or an OVERDUE_NOTICE
    test_id: str | None = None  # for `test`: one id per test the controller asked for
    incident_id: str | None = None  # for `breach.notice`
    doc: str | None = None  # for `policy.updated`, with `version`
    version: str | None = None
    signal_id: str | None = None  # for `consent.gpc`: the visitor's signal (a keyed hash, rightsdesk.audience.gpc)
    execution_id: str | None = None  # for `dsr.request.executed`, with `request_id`
    # A redelivery the controller asked for (rightsdesk.routing.delivery_log): sent again with the
    # same webhook-id, once per redelivery id, whatever became of the first delivery.
    redelivery_id: str | None = None
    # A test that enables the controller's disabled endpoint again if it answers 2xx
    # (rightsdesk.routing.delivery_log.ask_enable).
    enable: bool = False

    @classmethod
    def from_body(cls, body: dict, *, message_id: str) -> DeliveryMessage:
        event = str(body.get("event") or "")
        if event not in EVENTS:
            raise ValueError("unknown delivery event")
        redelivery_id = body.get("redelivery_id")
        if redelivery_id is not None and (event == "test" or not ID.fullmatch(str(redelivery_id))):
            raise ValueError("a redelivery names a short id, and a test is never redelivered")
        body = {name: value for name, value in body.items() if name != "redelivery_id"}
        message = cls._parse(body, event, message_id)
        return replace(message, redelivery_id=redelivery_id) if redelivery_id else message

    @classmethod
    def _parse(cls, body: dict, event: str, message_id: str) -> DeliveryMessage:
        if event in CONTROLLER_EVENTS:
            return cls._controller_event(body, event)
        notice = body.get("notice")
        if event == "overdue" and notice not in NOTICES and not OVERDUE_NOTICE.fullmatch(str(notice)):
            notice = "due_today"  # the more urgent reading of an unspecified notice
        message = cls(
            request_id=str(body.get("request_id") or ""),
            event=event,
            controller_id=body.get("controller_id") or None,
            notice=notice if event == "overdue" else None,
            # A test without its own id is one per queue message: SQS keeps the id across redeliveries.
            test_id=(body.get("test_id") or message_id) if event == "test" else None,
            enable=event == "test" and body.get("enable") == "1",
        )
        if (event == "test") != (not message.request_id) or (event == "test" and not message.controller_id):
            raise ValueError("a test names a controller and no request; every other event names a request")
        return message

    @classmethod
    def _controller_event(cls, body: dict, event: str) -> DeliveryMessage:
        needed = ("controller_id", *CONTROLLER_EVENT_IDS[event])
        if body.get("request_id") and "request_id" not in needed:
            raise ValueError(f"{event} concerns no request")
        # A message naming what another event is about is not guessed at: it is malformed.
        foreign = {name for names in CONTROLLER_EVENT_IDS.values() for name in names} - set(needed) - {"request_id"}
        if any(body.get(name) is not None for name in foreign):
            raise ValueError(f"{event} names only {', '.join(needed)}")
        ids = {name: body.get(name) for name in needed}
        if not all(isinstance(value, str) and ID.fullmatch(value) for value in ids.values()):
            raise ValueError(f"{event} needs {', '.join(needed)}, each a short id")
        return cls(event=event, **{"request_id": "", **ids})

    @property
    def delivery_id(self) -> str:
        """Stable for one event about one request (or one incident or policy version, for one
        controller): the idempotency key and the webhook-id's seed."""
        if self.event in CONTROLLER_EVENTS:
            parts = [
                self.event,
                str(self.controller_id),
                *(str(getattr(self, name)) for name in CONTROLLER_EVENT_IDS[self.event]),
            ]
        else:
            parts = [self.event, self.request_id or str(self.controller_id), self.notice or self.test_id or ""]
        return "dlv_" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]

    def key(self) -> dict:
        """What the idempotency layer hashes and stores: ids only. A redelivery is its own."""
        if self.redelivery_id:
            return {"delivery_id": f"{self.delivery_id}:{self.redelivery_id}", "event": self.event}
        return {"delivery_id": self.delivery_id, "event": self.event}


# ------------------------------------------------------------------ status changes


def mark_forwarded(request: RequestItem, *, mode: str, at: datetime | None = None) -> RequestItem:
    """verified (or delivery_failed, on a redrive) -> forwarded. A pull request gets the deadline of
    rule unfetched_pull_request in the same write: if its controller never fetches it, the sweeper
    purges it and marks it undelivered that long after its due date (a fetch replaces the rule)."""
    cause = "redrive" if request.status == Status.DELIVERY_FAILED.value else f"route_{mode}"
    updates = []
    if mode == DeliveryMode.PULL and request.due_at is not None:
        updates = retention.schedule_actions(request, retention.Rule.UNFETCHED_PULL_REQUEST, request.due_at)
    return transition(request, Status.FORWARDED, actor="dispatcher", cause=cause, at=at, updates=updates)


def mark_delivered(
    request: RequestItem,
    controller: ControllerItem,
    *,
    via: str,
    actor: Actor = "dispatcher",
    at: datetime | None = None,
    also_write: Callable[[TransactWrite], None] | None = None,
) -> RequestItem:
    """-> delivered, and in the same write schedule the purge of the subject's personal fields
    (retention rule delivered_subject_data, or the controller's own purge-after). `also_write`
    adds to the same transaction (the delivery log's attempt)."""
    at = at or clock.now()
    override = (
        timedelta(seconds=int(controller.purge_after_seconds)) if controller.purge_after_seconds is not None else None
    )
    return transition(
        request,
        Status.DELIVERED,
        actor=actor,
        cause=f"delivered_{via}",
        at=at,
        updates=[
            RequestItem.delivered_at.set(at),
            *retention.schedule_actions(request, retention.Rule.DELIVERED_SUBJECT_DATA, at, override),
        ],
        also_write=[also_write] if also_write else [],
    )


def mark_failed(
    request: RequestItem,
    *,
    cause: str,
    at: datetime | None = None,
    actor: Actor = "dispatcher",
    why: str = "retries_exhausted",
    also_write: Callable[[TransactWrite], None] | None = None,
) -> RequestItem:
    """-> delivery_failed, scheduling the purge of the subject's personal fields under the rule
    undelivered_subject_data: a request nobody could deliver must not keep them for ever. A purge
    that already happened stays (a bounce reported after the delivered request's hour)."""
    at = at or clock.now()
    return transition(
        request,
        Status.DELIVERY_FAILED,
        actor=actor,
        cause=f"{why}_{cause}",
        at=at,
        updates=[]
        if request.personal_purged_at is not None
        else retention.schedule_actions(request, retention.Rule.UNDELIVERED_SUBJECT_DATA, at),
        also_write=[also_write] if also_write else [],
    )


# ------------------------------------------------------------------ email delivery (the notifier, SES events)

MAIL_FAILED = "mail_failed"
BOUNCED = "bounced"


def record_email_outcome(request_id: str, outcome: str) -> bool:
    """What became of a request's `request_forwarded` mail, from the notifier: SES accepted it
    (`sent`: forwarded -> delivered, or a redriven delivery_failed -> delivered), or it never went
    (`failed`, the last attempt: forwarded -> delivery_failed; the message goes to the dead-letter
    queue, whose alarm tells the operator). False if nothing changed: it moved on (cancelled,
    recorded by an earlier try) or there was nothing to send."""
    from rightsdesk.kernel.errors import NotFound
    from rightsdesk.store import queries

    if outcome not in ("sent", "failed"):
        return False
    try:
        request = queries.load_request(request_id)
    except NotFound:
        return False
    try:
        if outcome == "sent" and request.status in AWAITING_DELIVERY:
            controller = controller_lookup.get_controller(request.controller_id)
            if controller is None:
                return False
            mark_delivered(request, controller, via=DeliveryMode.EMAIL, actor="notifier")
            return True
        if outcome == "failed" and request.status == Status.FORWARDED.value:
            mark_failed(request, cause=MAIL_FAILED, actor="notifier")
            return True
    except IllegalTransition:
        return False  # changed meanwhile (cancelled, or a parallel try recorded it): that change stands
    return False


def bounced_request(detail: dict) -> str | None:
    """The request whose forwarding mail an SES event reports as permanently bounced, from the
    message's tags (rightsdesk.outbound.notify tags a `request_forwarded` mail with its request id)."""
    if str(detail.get("eventType") or detail.get("notificationType") or "") != "Bounce":
        return None
    if (detail.get("bounce") or {}).get("bounceType") != "Permanent":
        return None
    tags = (detail.get("mail") or {}).get("tags") or {}
    kind = tags.get("kind") or []
    request_id = tags.get("request_id") or []
    if kind != ["request_forwarded"] or len(request_id) != 1 or not ID.fullmatch(str(request_id[0])):
        return None
    return str(request_id[0])


def record_bounce(detail: dict, at: datetime | None = None) -> str | None:
    """A bounce of a request's forwarding mail: the request was not delivered after all
    (delivered -> delivery_failed, audited). Returns the request id if it changed, so the handler
    can alert the operator (metric DeliveryBounced, its alarm); None for any other event."""
    from rightsdesk.kernel.errors import NotFound
    from rightsdesk.store import queries

    request_id = bounced_request(detail)
    if request_id is None:
        return None
    try:
        request = queries.load_request(request_id)
    except NotFound:
        return None
    if request.status not in (Status.DELIVERED.value, Status.FORWARDED.value):
        return None  # acknowledged or further: the controller has it, whatever the mail server said
    try:
        mark_failed(request, cause=DeliveryMode.EMAIL, at=at, actor="ses-events", why=BOUNCED)
    except IllegalTransition:
        return None
    return request_id


def disable_webhook(
    controller: ControllerItem,
    *,
    cause: str,
    at: datetime | None = None,
    also_write: Callable[[TransactWrite], None] | None = None,
) -> bool:
    """The endpoint said it is gone: deliver by email from now on. False if someone changed it first.

    The endpoint is disabled, not forgotten: its URL and secrets stay, so the controller can enable
    it again after a test event it accepts (rightsdesk.routing.delivery_log.enable_webhook); the
    audit event says why: the endpoint answered `cause`. `also_write` adds to the same write.
    """
    at = at or clock.now()
    event = audit.event(controller.pk, action="webhook_disabled", actor="dispatcher", at=at, cause=cause)
    try:
        with transaction() as tx:
            tx.update(
                controller,
                actions=[
                    ControllerItem.webhook_disabled_reason.set(GONE_410),
                    ControllerItem.webhook_disabled_at.set(at),
                    ControllerItem.updated_at.set(at),
                ],
                condition=(ControllerItem.delivery == DeliveryMode.WEBHOOK)
                & ControllerItem.webhook_disabled_reason.does_not_exist(),
            )
            tx.save(event, condition=type(event).sk.does_not_exist())
            if also_write:
                also_write(tx)
    except TransactWriteError:
        return False
    controller.webhook_disabled_reason = GONE_410
    controller.webhook_disabled_at = at
    return True


def record_test(
    controller: ControllerItem,
    *,
    cause: str,
    at: datetime | None = None,
    also_write: Callable[[TransactWrite], None] | None = None,
) -> None:
    """A test delivery's outcome, on the controller's audit trail (with its attempt, in one write)."""
    event = audit.event(controller.pk, action="webhook_test", actor="dispatcher", at=at, cause=cause)
    with transaction() as tx:
        tx.save(event, condition=type(event).sk.does_not_exist())
        if also_write:
            also_write(tx)
