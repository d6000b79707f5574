"""What the dispatcher does with one DeliveryQueue message, by event and by the controller's mode.

- route:     verified -> forwarded, then webhook (signed), email to the privacy contact, or nothing
             for pull (the controller API's first fetch marks it delivered); delivered schedules the
             purge. An email delivery is delivered when SES accepts the mail (the notifier records it,
             rightsdesk.routing.delivery.record_email_outcome), not when it is queued here. The operator's own data (mode internal) goes verified -> in_progress instead.
- cancelled, overdue: a notice without personal data, by webhook, else by email.
- test:      one signed test event to a controller's webhook; the outcome is audited, not retried.
- breach.notice, policy.updated: one signed event to a webhook controller, about no request. Retried
             like a route; the outcome is recorded on the breach notice or the controller's audit
             trail. Never emailed from here: the notifier emails the notice itself to every controller.

Every status change is conditional on the status it starts from, so a redelivered message cannot
change a request twice. A failure raises delivery.RetryLater with the delay the schedule gives.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rightsdesk.kernel.delivery_mode import DeliveryMode
from rightsdesk.kernel.errors import IllegalTransition, NotFound
from rightsdesk.kernel.status import Status, is_open
from rightsdesk.platform import webhooks
from rightsdesk.platform.config import settings
from rightsdesk.routing import delivery, payloads, registry
from rightsdesk.routing.delivery import DeliveryMessage, Exhausted, RetryLater
from rightsdesk.store import outbox, queries
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.requests import RequestItem
from rightsdesk.store.lifecycle import transition

log = logging.getLogger(__name__)

NOTICE_TYPES = {"cancelled": webhooks.EVENT_CANCELLED, "overdue": webhooks.EVENT_OVERDUE}


@dataclass(frozen=True)
class Attempt:
    number: int  # the message's receive count: 1 on the first try
    allowed: int

    @property
    def last(self) -> bool:
        return self.number >= self.allowed

    def retry(self, cause: str) -> RetryLater:
        return RetryLater(cause, delivery.retry_delay(self.number))


def dispatch(message: DeliveryMessage, *, attempt: int, max_attempts: int = delivery.DEFAULT_MAX_ATTEMPTS) -> dict:
    """Act on one message; the answer (ids and outcome words only) is what idempotency stores."""
    handler = {
        "route": _route,
        "cancelled": _notice,
        "overdue": _notice,
        "test": _test,
        webhooks.EVENT_BREACH_NOTICE: _controller_event,
        webhooks.EVENT_POLICY_UPDATED: _controller_event,
    }[message.event]
    outcome = handler(message, Attempt(attempt, max_attempts))
    return {"delivery_id": message.delivery_id, "event": message.event, **outcome}


# ------------------------------------------------------------------ events


def _route(message: DeliveryMessage, attempt: Attempt) -> dict:
    request = _load(message.request_id)
    if request is None:
        return {"result": "gone"}
    controller = _controller(request.controller_id, attempt)
    status = request.status
    if registry.state_of(controller) == registry.REMOVED:
        return {"result": "controller_removed"}  # stays as it is: the operator answers it (requests answer)
    route = registry.delivery_route(controller)
    if status == Status.VERIFIED.value and route == DeliveryMode.INTERNAL:
        transition(request, Status.IN_PROGRESS, actor="dispatcher", cause=DeliveryMode.INTERNAL)
        return {"result": "in_progress"}
    if status in (Status.VERIFIED.value, Status.DELIVERY_FAILED.value):
        request = delivery.mark_forwarded(request, mode=route)
    elif status != Status.FORWARDED.value:
        return {"result": "already_" + status}  # delivered before, cancelled, ...
    return _deliver(request, controller, message, attempt)


def _deliver(request: RequestItem, controller: ControllerItem, message: DeliveryMessage, attempt: Attempt) -> dict:
    route = registry.delivery_route(controller)
    if route == DeliveryMode.WEBHOOK:
        sent = _send(controller, webhooks.EVENT_FORWARDED, payloads.forwarded(request, controller), message)
        if sent.ok:
            return _delivered(request, controller, DeliveryMode.WEBHOOK)
        if not sent.gone:
            if attempt.last:
                _give_up(request, controller, attempt, sent.cause)
            raise attempt.retry(sent.cause)
        _disable(controller)
    elif route != DeliveryMode.EMAIL:
        return {"result": "awaiting_pull"}  # pull: the controller API's first fetch delivers it
    # Still `forwarded`: the notifier marks it delivered once SES accepted the mail, or
    # delivery_failed if the mail never went (rightsdesk.outbound.mail_kinds, request_forwarded).
    outbox.enqueue_mail("request_forwarded", request_id=request.request_id, mail_id=f"forward-{request.request_id}")
    return {"result": "mail_queued", "via": DeliveryMode.EMAIL}


def _notice(message: DeliveryMessage, attempt: Attempt) -> dict:
    request = _load(message.request_id)
    if request is None:
        return {"result": "gone"}
    if message.event == "overdue" and not is_open(request.status):
        return {"result": "closed"}
    controller = _controller(request.controller_id, attempt)
    notice = message.notice or "cancelled"
    if registry.state_of(controller) == registry.REMOVED:
        return {"result": "controller_removed"}  # nobody to tell: the operator sees it in `requests list`
    if registry.delivery_route(controller) == DeliveryMode.WEBHOOK:
        data = payloads.notice(request, notice=message.notice)
        sent = _send(controller, NOTICE_TYPES[message.event], data, message)
        if sent.ok:
            return {"result": "sent", "via": DeliveryMode.WEBHOOK}
        if sent.gone:
            _disable(controller)
        elif not attempt.last:
            raise attempt.retry(sent.cause)
        # a notice whose webhook stays down still reaches the contact, by email
    outbox.enqueue_mail(
        "request_notice", request_id=request.request_id, notice=notice, mail_id=f"notice-{message.delivery_id}"
    )
    return {"result": "sent", "via": DeliveryMode.EMAIL}


def _test(message: DeliveryMessage, attempt: Attempt) -> dict:
    controller = registry.get_controller(str(message.controller_id))
    if controller is None or registry.delivery_route(controller) != DeliveryMode.WEBHOOK:
        return {"result": "not_webhook"}
    sent = _send(controller, webhooks.EVENT_TEST, payloads.test(controller, str(message.test_id)), message)
    delivery.record_test(controller, cause=sent.cause)
    return {"result": "ok" if sent.ok else "failed", "cause": sent.cause}


def _controller_event(message: DeliveryMessage, attempt: Attempt) -> dict:
    # Imported here: only these two events need the breach and policy modules, so the other
    # deliveries do not load them at cold start.
    from rightsdesk.notices import notice_webhooks as about

    controller = registry.get_controller(str(message.controller_id))
    if controller is None or registry.delivery_route(controller) != DeliveryMode.WEBHOOK:
        # Its privacy contact gets the notice by email from the notifier; there is nothing to add.
        return {"result": "not_webhook"}
    if about.delivered_before(message):
        return {"result": "already_delivered"}
    try:
        data = about.data(message)
    except NotFound:
        return {"result": "gone"}  # the incident or version is gone (or past retention), or not theirs
    sent = _send(controller, message.event, data, message)
    if sent.ok:
        about.record(message, controller, about.DELIVERED, sent.cause)
        return {"result": "sent", "via": DeliveryMode.WEBHOOK}
    if sent.gone:
        _disable(controller)
        about.record(message, controller, about.DISABLED, sent.cause)
        return {"result": "gone_endpoint"}
    if not attempt.last:
        raise attempt.retry(sent.cause)
    about.record(message, controller, about.FAILED, sent.cause)
    raise Exhausted(sent.cause)  # to the dead-letter queue, whose alarm tells the operator


# ------------------------------------------------------------------ steps


def _load(request_id: str) -> RequestItem | None:
    """The request, or None once it is gone or past its retention time."""
    try:
        return queries.load_request(request_id)
    except NotFound:
        return None


def _controller(controller_id: str, attempt: Attempt) -> ControllerItem:
    controller = registry.get_controller(controller_id)
    if controller is None:
        raise Exhausted("no_controller") if attempt.last else attempt.retry("no_controller")
    return controller


def _send(controller: ControllerItem, event_type: str, data: dict, message: DeliveryMessage) -> webhooks.SendResult:
    if not controller.webhook_url:
        return webhooks.SendResult(failure="no_webhook_url")
    secrets = registry.webhook_secrets(controller)
    if not secrets:
        return webhooks.SendResult(failure="no_webhook_secret")
    body = webhooks.envelope(event_type, data)
    headers = webhooks.signed_headers(secrets, webhooks.webhook_id(message.delivery_id), body)
    sent = webhooks.post(controller.webhook_url, body, headers, allow_loopback_http=settings().allow_http_webhooks)
    log.info(
        "webhook attempt",
        extra={"controller_id": controller.controller_id, "event_type": event_type, "cause": sent.cause},
    )
    return sent


def _delivered(request: RequestItem, controller: ControllerItem, via: str) -> dict:
    try:
        delivery.mark_delivered(request, controller, via=via)
    except IllegalTransition:
        # Cancelled (or fetched by pull) between our read and our write: that change stands.
        return {"result": "superseded", "via": via}
    return {"result": "delivered", "via": via}


def _give_up(request: RequestItem, controller: ControllerItem, attempt: Attempt, cause: str) -> None:
    """The last attempt failed: tell the contact, mark the request, let the message go to the DLQ."""
    # One email per round of attempts (a redrive starts another): keyed on when this round began.
    round_id = int(request.updated_at.timestamp()) if request.updated_at else 0
    outbox.enqueue_mail(
        "delivery_failed",
        request_id=request.request_id,
        attempts=attempt.number,
        cause=cause,
        mail_id=f"delivery-failed-{request.request_id}-{round_id}",
    )
    try:
        delivery.mark_failed(request, cause=cause)
    except IllegalTransition:
        pass  # it left `forwarded` meanwhile (cancelled, fetched): that change stands
    raise Exhausted(cause)


def _disable(controller: ControllerItem) -> None:
    """The endpoint answered 410: deliver by email from now on, and tell the contact so (once per
    disabling: the mail id names the moment the endpoint was last changed)."""
    changed_at = int(controller.updated_at.timestamp()) if controller.updated_at else 0
    if delivery.disable_webhook(controller, cause="http_410"):
        outbox.enqueue_mail(
            "webhook_disabled",
            controller_id=controller.controller_id,
            mail_id=f"webhook-disabled-{controller.controller_id}-{changed_at}",
        )
    log.warning(
        "webhook gone; controller switched to email delivery", extra={"controller_id": controller.controller_id}
    )
