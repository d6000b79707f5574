"""What the dispatcher does with one DeliveryQueue message, by event and by the controller's mode.

- route:     verified -> forwarded, then webhook (signed), email to the privacy contact, or nothing
             for pull (the controller API's first fetch marks it delivered); delivered schedules the
             purge. An email delivery is delivered when SES accepts the mail (the notifier records it,
             rightsdesk.routing.delivery.record_email_outcome), not when it is queued here. The operator's own data (mode internal) goes verified -> in_progress instead.
- cancelled, overdue: a notice without personal data, by webhook, else by email.
- test:      one signed test event to a controller's webhook; the outcome is audited, not retried.
- consent.gpc: a visitor's Global Privacy Control signal the controller forwarded, back to its
             webhook (rightsdesk.outbound.gpc_webhooks); email and pull controllers had the API's answer.
- dsr.request.executed: an execution the controller asked for ended; its receipt's summary, to its
             webhook (rightsdesk.outbound.executed_webhooks); others read the receipt from the API.
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
from rightsdesk.routing import controller_lookup, delivery, delivery_log, payloads
from rightsdesk.routing.delivery import DeliveryMessage, Exhausted, RetryLater
from rightsdesk.routing.delivery_words import DELIVERED, EXHAUSTED, FAILED, RETRYING
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


def _attempt(
    message: DeliveryMessage, controller: ControllerItem, attempt: Attempt, outcome: str, sent=None, error=None
) -> delivery_log.AttemptRecord:
    """The delivery log's record of this attempt, to be written with the write its outcome needs."""
    return delivery_log.attempt_of(
        message, controller.controller_id, attempt=attempt.number, outcome=outcome, sent=sent, error=error
    )


def _failed(message: DeliveryMessage, controller: ControllerItem, attempt: Attempt, sent) -> RetryLater:
    """A failed attempt that is not the last: logged by a write of its own (nothing else changes),
    and the message comes back after the schedule's delay."""
    _attempt(message, controller, attempt, RETRYING, sent).save()
    return attempt.retry(sent.result.cause)


def dispatch(message: DeliveryMessage, *, attempt: int, max_attempts: int = delivery.DEFAULT_MAX_ATTEMPTS) -> dict:
    """Act on one message; the answer (ids and outcome words only) is what idempotency stores."""
    handler = {
        "route": _route,
        "cancelled": _notice,
        "overdue": _notice,
        "test": _test,
        webhooks.EVENT_BREACH_NOTICE: _controller_event,
        webhooks.EVENT_POLICY_UPDATED: _controller_event,
        webhooks.EVENT_CONSENT_GPC: _controller_event,
        webhooks.EVENT_EXECUTED: _controller_event,
    }[message.event]
    outcome = handler(message, Attempt(attempt, max_attempts))
    return {"delivery_id": message.delivery_id, "event": message.event, **outcome}


# ------------------------------------------------------------------ events


def _route(message: DeliveryMessage, attempt: Attempt) -> dict:
    request = _load(message.request_id)
    if request is None:
        return {"result": "gone"}
    if request.gpc:
        _record_gpc(request)
    controller = _controller(request.controller_id, attempt)
    status = request.status
    if controller_lookup.state_of(controller) == controller_lookup.REMOVED:
        return {"result": "controller_removed"}  # stays as it is: the operator answers it (requests answer)
    route = controller_lookup.delivery_route(controller)
    if status == Status.VERIFIED.value and route == DeliveryMode.INTERNAL:
        transition(request, Status.IN_PROGRESS, actor="dispatcher", cause=DeliveryMode.INTERNAL)
        return {"result": "in_progress"}
    if status in (Status.VERIFIED.value, Status.DELIVERY_FAILED.value):
        request = delivery.mark_forwarded(request, mode=route)
    elif status != Status.FORWARDED.value:
        if message.redelivery_id and status in RESENDABLE and route == DeliveryMode.WEBHOOK:
            return _resend(request, controller, message, attempt)
        return {"result": "already_" + status}  # delivered before, cancelled, ...
    return _deliver(request, controller, message, attempt)


def _record_gpc(request: RequestItem) -> None:
    """The submission carried `Sec-GPC: 1`: now that the address is verified (a route follows the
    verification), its withdrawal goes into the ledger. Repeating it changes nothing."""
    from rightsdesk.audience import gpc  # only a request with the signal needs the ledger

    recorded = gpc.record_for_request(request)
    if recorded is not None:
        log.info(
            "gpc signal recorded",
            extra={
                "request_id": request.request_id,
                "withdrawn": recorded.withdrawn,
                "conflicts": sorted(recorded.conflicts),
            },
        )


# A redelivery of a request the controller has had: sent again, its status unchanged.
RESENDABLE = frozenset(
    status.value
    for status in (Status.DELIVERED, Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.COMPLETED, Status.REJECTED)
)


def _resend(request: RequestItem, controller: ControllerItem, message: DeliveryMessage, attempt: Attempt) -> dict:
    """Send a delivered request's `dsr.request.forwarded` again, while its personal fields are kept;
    once purged nothing is sent and the log says `purged` (the API refused it too, if it knew)."""
    if not any(queries.personal_fields(request).values()):
        _attempt(message, controller, attempt, FAILED, error=delivery_log.PURGED).save()
        return {"result": "purged"}
    sent = _send(controller, webhooks.EVENT_FORWARDED, payloads.forwarded(request, controller), message)
    if sent.result.ok:
        _attempt(message, controller, attempt, DELIVERED, sent).save()
        return {"result": "resent", "via": DeliveryMode.WEBHOOK}
    if sent.result.gone:
        _disable(controller, _attempt(message, controller, attempt, FAILED, sent))
        return {"result": "gone_endpoint"}
    if attempt.last:
        _attempt(message, controller, attempt, EXHAUSTED, sent).save()
        raise Exhausted(sent.result.cause)
    raise _failed(message, controller, attempt, sent)


def _deliver(request: RequestItem, controller: ControllerItem, message: DeliveryMessage, attempt: Attempt) -> dict:
    route = controller_lookup.delivery_route(controller)
    if route == DeliveryMode.WEBHOOK:
        sent = _send(controller, webhooks.EVENT_FORWARDED, payloads.forwarded(request, controller), message)
        if sent.result.ok:
            return _delivered(request, controller, _attempt(message, controller, attempt, DELIVERED, sent))
        if not sent.result.gone:
            if attempt.last:
                _give_up(request, attempt, sent.result.cause, _attempt(message, controller, attempt, EXHAUSTED, sent))
            raise _failed(message, controller, attempt, sent)
        _disable(controller, _attempt(message, controller, attempt, FAILED, sent))
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
    if controller_lookup.state_of(controller) == controller_lookup.REMOVED:
        return {"result": "controller_removed"}  # nobody to tell: the operator sees it in `requests list`
    if controller_lookup.delivery_route(controller) == DeliveryMode.WEBHOOK:
        data = payloads.notice(request, notice=message.notice)
        sent = _send(controller, NOTICE_TYPES[message.event], data, message)
        if sent.result.ok:
            _attempt(message, controller, attempt, DELIVERED, sent).save()
            return {"result": "sent", "via": DeliveryMode.WEBHOOK}
        if sent.result.gone:
            _disable(controller, _attempt(message, controller, attempt, FAILED, sent))
        elif not attempt.last:
            raise _failed(message, controller, attempt, sent)
        else:
            _attempt(message, controller, attempt, EXHAUSTED, sent).save()
        if message.redelivery_id:
            return {"result": "not_redelivered", "cause": sent.result.cause}  # the contact had it by email before
        # a notice whose webhook stays down still reaches the contact, by email
    outbox.enqueue_mail(
        "request_notice", request_id=request.request_id, notice=notice, mail_id=f"notice-{message.delivery_id}"
    )
    return {"result": "sent", "via": DeliveryMode.EMAIL}


def _test(message: DeliveryMessage, attempt: Attempt) -> dict:
    controller = controller_lookup.get_controller(str(message.controller_id))
    if controller is None:
        return {"result": "not_webhook"}
    # A disabled endpoint gets one kind of event: the test its controller sent to enable it again.
    enabling = message.enable and delivery_log.awaits_enabling_test(controller)
    if not enabling and controller_lookup.delivery_route(controller) != DeliveryMode.WEBHOOK:
        return {"result": "not_webhook"}
    sent = _send(controller, webhooks.EVENT_TEST, payloads.test(controller, str(message.test_id)), message)
    logged = _attempt(message, controller, attempt, DELIVERED if sent.result.ok else FAILED, sent)
    if enabling and sent.result.ok:
        enabled = delivery_log.enable_after_test(controller, logged)
        return {"result": "enabled" if enabled else "ok", "cause": sent.result.cause}
    if sent.result.gone:  # a retired endpoint says so to a test as to any delivery
        _disable(controller, logged)
        return {"result": "gone_endpoint", "cause": sent.result.cause}
    delivery.record_test(controller, cause=sent.result.cause, also_write=logged.write_into)
    return {"result": "ok" if sent.result.ok else "failed", "cause": sent.result.cause}


def _controller_event(message: DeliveryMessage, attempt: Attempt) -> dict:
    # Imported here: only these events need the breach, policy and signal modules, so the other
    # deliveries do not load them at cold start.
    if message.event == webhooks.EVENT_CONSENT_GPC:
        from rightsdesk.outbound import gpc_webhooks as about
    elif message.event == webhooks.EVENT_EXECUTED:
        from rightsdesk.outbound import executed_webhooks as about
    else:
        from rightsdesk.notices import notice_webhooks as about

    controller = controller_lookup.get_controller(str(message.controller_id))
    if controller is None or controller_lookup.delivery_route(controller) != DeliveryMode.WEBHOOK:
        # Its privacy contact gets the notice by email from the notifier; there is nothing to add.
        return {"result": "not_webhook"}
    if not message.redelivery_id and about.delivered_before(message):
        return {"result": "already_delivered"}
    try:
        data = about.data(message)
    except NotFound:
        return {"result": "gone"}  # the incident or version is gone (or past retention), or not theirs
    sent = _send(controller, message.event, data, message)
    cause = sent.result.cause
    if sent.result.ok:
        _attempt(message, controller, attempt, DELIVERED, sent).save()
        about.record(message, controller, about.DELIVERED, cause)
        return {"result": "sent", "via": DeliveryMode.WEBHOOK}
    if sent.result.gone:
        _disable(controller, _attempt(message, controller, attempt, FAILED, sent))
        about.record(message, controller, about.DISABLED, cause)
        return {"result": "gone_endpoint"}
    if not attempt.last:
        raise _failed(message, controller, attempt, sent)
    _attempt(message, controller, attempt, EXHAUSTED, sent).save()
    about.record(message, controller, about.FAILED, cause)
    raise Exhausted(cause)  # to the dead-letter queue, whose alarm tells the operator


# ------------------------------------------------------------------ steps


def _load(request_id: str) -> RequestItem | None:
    """The request, or None once it is gone or past its retention time."""
    try:
        return queries.load_request(request_id)
    except NotFound:
        return None


def _controller(controller_id: str, attempt: Attempt) -> ControllerItem:
    controller = controller_lookup.get_controller(controller_id)
    if controller is None:
        raise Exhausted("no_controller") if attempt.last else attempt.retry("no_controller")
    return controller


def _send(controller: ControllerItem, event_type: str, data: dict, message: DeliveryMessage) -> delivery_log.Sent:
    sent = delivery_log.send(controller, event_type, data, webhooks.webhook_id(message.delivery_id))
    log.info(
        "webhook attempt",
        extra={
            "controller_id": controller.controller_id,
            "event_type": event_type,
            "cause": sent.result.cause,
            "latency_ms": sent.latency_ms,
        },
    )
    return sent


def _delivered(request: RequestItem, controller: ControllerItem, logged: delivery_log.AttemptRecord) -> dict:
    via = DeliveryMode.WEBHOOK
    try:
        # The attempt rides in the transaction that marks it delivered: no call of its own.
        delivery.mark_delivered(request, controller, via=via, also_write=logged.write_into)
    except IllegalTransition:
        # Cancelled (or fetched by pull) between our read and our write: that change stands.
        logged.save()
        return {"result": "superseded", "via": via}
    return {"result": "delivered", "via": via}


def _give_up(request: RequestItem, attempt: Attempt, cause: str, logged: delivery_log.AttemptRecord) -> None:
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
        delivery.mark_failed(request, cause=cause, also_write=logged.write_into)
    except IllegalTransition:
        logged.save()  # it left `forwarded` meanwhile (cancelled, fetched): that change stands
    raise Exhausted(cause)


def _disable(controller: ControllerItem, logged: delivery_log.AttemptRecord) -> None:
    """The endpoint answered 410: deliver by email from now on, and tell the contact so (once per
    disabling: the mail id names the moment the endpoint was last changed). The attempt is logged
    in the same write."""
    changed_at = int(controller.updated_at.timestamp()) if controller.updated_at else 0
    if not delivery.disable_webhook(controller, cause="http_410", also_write=logged.write_into):
        logged.save()  # disabled already (a parallel attempt), or changed meanwhile
    else:
        outbox.enqueue_mail(
            "webhook_disabled",
            controller_id=controller.controller_id,
            mail_id=f"webhook-disabled-{controller.controller_id}-{changed_at}",
        )
    log.warning(
        "webhook gone; controller switched to email delivery", extra={"controller_id": controller.controller_id}
    )
