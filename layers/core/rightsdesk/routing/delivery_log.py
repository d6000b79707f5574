"""The webhook delivery log, redelivery and the endpoint's state: what a controller (and the
operator's CLI) sees of the deliveries to its endpoint, and what it may do about them.

Every attempt the dispatcher makes is recorded (rightsdesk.store.items.deliveries): its time, event
type, webhook-id, request id if any, HTTP status, latency, error class, outcome and number. Never a
body, a header value or a URL. The record is written in the transaction the dispatcher makes
anyway where there is one (delivered, delivery_failed, the endpoint disabled, a test audited);
only an attempt that changes nothing else (a failure that will be retried, a notice sent) costs a
write of its own (docs/decisions.md, "Delivery log").

A redelivery is a DeliveryQueue message like the first (ids only) with a `redelivery_id`; the
same redelivery asked twice queues once (the delivery item holds the one waiting). Once a
request's personal fields are purged its `dsr.request.forwarded` is not sent again: the answer is
409 `purged`, naming the purged fields.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.delivery_mode import DeliveryMode
from rightsdesk.kernel.errors import Conflict, InvalidInput, NotFound
from rightsdesk.kernel.status import Status
from rightsdesk.platform import hashing, webhooks
from rightsdesk.platform.config import settings
from rightsdesk.platform.operator_identity import controller_actor
from rightsdesk.routing import controller_lookup, registry
from rightsdesk.routing.delivery import GONE_410, DeliveryMessage
from rightsdesk.routing.delivery_words import (
    CONTROLLER_EVENTS,
    DEFAULT_PAGE,
    EVENT_TYPES,
    MAX_BULK_REDELIVERY,
    MAX_PAGE,
    NOT_DELIVERED,
    OUTCOMES,
)
from rightsdesk.store import audit, outbox, queries
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.deliveries import DeliveryAttemptItem, DeliveryItem
from rightsdesk.store.items.requests import RequestItem
from rightsdesk.store.items.table import get_many, transaction
from rightsdesk.store.lifecycle import condition_failed

# ------------------------------------------------------------------ words

# Outcomes, event types and page sizes: rightsdesk.routing.delivery_words.
# Error classes (no HTTP status: the attempt ended before an answer, or there was nothing to send)
TIMEOUT, CONNECTION, TLS, SSRF_REFUSED, NO_ENDPOINT = "timeout", "connection", "tls", "ssrf_refused", "no_endpoint"
GONE = "gone"  # the endpoint answered 410: it is disabled
PURGED, REQUEST_GONE = "purged", "request_gone"  # a redelivery found nothing it may send
_FAILURES = {"timeout": TIMEOUT, "connection": CONNECTION, "tls": TLS, "refused_address": SSRF_REFUSED}

# Endpoint states and why one is disabled.
ENABLED, DISABLED, NOT_WEBHOOK = "enabled", "disabled", "not_webhook"
OPERATOR = "operator"  # GONE_410 (rightsdesk.routing.delivery) is the other

# The ids besides a request's that say what a delivery is about (a message's, an attempt's).
ABOUT_IDS = ("notice", "incident_id", "doc", "version", "signal_id", "execution_id")

# A redelivery asked for and not attempted within this time (its message lost) may be asked again.
REDELIVERY_PENDING = timedelta(minutes=15)


def error_class(sent: webhooks.SendResult) -> str | None:
    """A short word for how an attempt failed: `http_5xx`, `timeout`, `ssrf_refused`, ...; None if it
    was delivered."""
    if sent.ok:
        return None
    if sent.status is not None:
        return GONE if sent.gone else f"http_{sent.status // 100}xx"
    return _FAILURES.get(str(sent.failure), NO_ENDPOINT)


# ------------------------------------------------------------------ sending (the dispatcher's one POST)


@dataclass(frozen=True)
class Sent:
    result: webhooks.SendResult
    latency_ms: int | None  # None when nothing went out (no endpoint, no secret)


def send(controller: ControllerItem, event_type: str, data: dict, webhook_id: str) -> Sent:
    """Sign and POST one event to the controller's endpoint, timed. Logs nothing."""
    if not controller.webhook_url:
        return Sent(webhooks.SendResult(failure="no_webhook_url"), None)
    secrets = registry.webhook_secrets(controller)
    if not secrets:
        return Sent(webhooks.SendResult(failure="no_webhook_secret"), None)
    body = webhooks.envelope(event_type, data)
    headers = webhooks.signed_headers(secrets, webhook_id, body)
    started = time.monotonic()
    result = webhooks.post(controller.webhook_url, body, headers, allow_loopback_http=settings().allow_http_webhooks)
    return Sent(result, int((time.monotonic() - started) * 1000))


# ------------------------------------------------------------------ recording


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt, ready to be written alone or inside another transaction."""

    controller_id: str
    webhook_id: str
    event_type: str
    message_event: str
    attempt: int
    outcome: str
    at: datetime
    attempt_id: str = field(default_factory=lambda: hashing.new_id("att"))
    http_status: int | None = None
    latency_ms: int | None = None
    error_class: str | None = None
    request_id: str | None = None
    notice: str | None = None
    incident_id: str | None = None
    doc: str | None = None
    version: str | None = None
    signal_id: str | None = None
    redelivery_id: str | None = None
    execution_id: str | None = None

    # What the delivery is about besides its keys (the controller and the webhook-id are in them).
    _ABOUT = ("event_type", "message_event", "request_id", *ABOUT_IDS)

    def _expires(self) -> int:
        return retention.expires_at(retention.Rule.DELIVERY_ATTEMPT, self.at)

    def attempt_item(self) -> DeliveryAttemptItem:
        """The attempt as a new item: a put, so the hot path's transaction parses no long update."""
        fields = ("controller_id", "webhook_id", *self._ABOUT, "attempt_id", "at", "attempt", "outcome")
        fields += ("http_status", "latency_ms", "error_class", "redelivery_id")
        values = {name: getattr(self, name) for name in fields}
        return DeliveryAttemptItem(
            DeliveryAttemptItem.key(self.controller_id),
            f"{DeliveryAttemptItem.SK_PREFIX}{_sortable(self.at)}#{self.attempt_id}",
            expires_at=self._expires(),
            **{name: value for name, value in values.items() if value is not None},
        )

    def _delivery_actions(self) -> list:
        """The delivery's latest state: what it is about, how its latest attempt ended, its index keys."""
        values = {
            **{name: getattr(self, name) for name in self._ABOUT},
            "last_at": self.at,
            "last_outcome": self.outcome,
            "last_http_status": self.http_status,
            "last_error_class": self.error_class,
            "gsi1pk": DeliveryItem.outcome_partition(self.controller_id, self.outcome),
            "gsi1sk": f"{_sortable(self.at)}#{self.webhook_id}",
            "expires_at": self._expires(),
        }
        actions = [getattr(DeliveryItem, name).set(value) for name, value in values.items() if value is not None]
        actions += [
            getattr(DeliveryItem, name).remove()
            for name in ("last_http_status", "last_error_class")
            if values[name] is None
        ]
        actions.append(DeliveryItem.attempts.add(1))
        if self.redelivery_id:
            # This was the redelivery waiting: another may be asked for now.
            actions += [DeliveryItem.redelivery_id.remove(), DeliveryItem.redelivery_asked_at.remove()]
        return actions

    def write_into(self, tx: TransactWrite) -> None:
        """Add the attempt (new) and its delivery's state to `tx`, a transaction made anyway."""
        tx.save(self.attempt_item(), condition=DeliveryAttemptItem.sk.does_not_exist())
        pointer = DeliveryItem(DeliveryAttemptItem.key(self.controller_id), DeliveryItem.sort_key(self.webhook_id))
        tx.update(pointer, actions=self._delivery_actions())

    def save(self) -> None:
        """The attempt as a write of its own (one transaction, one call)."""
        with transaction() as tx:
            self.write_into(tx)


def _sortable(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def attempt_of(
    message: DeliveryMessage,
    controller_id: str,
    *,
    attempt: int,
    outcome: str,
    sent: Sent | None = None,
    error: str | None = None,
    at: datetime | None = None,
) -> AttemptRecord:
    """The record of one attempt at `message`: how `sent` went, or `error` if nothing was sent."""
    result = sent.result if sent is not None else None
    return AttemptRecord(
        controller_id=controller_id,
        webhook_id=webhooks.webhook_id(message.delivery_id),
        event_type=EVENT_TYPES[message.event],
        message_event=message.event,
        attempt=attempt,
        outcome=outcome,
        at=at or clock.now(),
        http_status=result.status if result is not None else None,
        latency_ms=sent.latency_ms if sent is not None else None,
        error_class=error_class(result) if result is not None else error,
        request_id=message.request_id or None,
        notice=message.notice,
        incident_id=message.incident_id,
        doc=message.doc,
        version=message.version,
        signal_id=message.signal_id,
        redelivery_id=message.redelivery_id,
        execution_id=message.execution_id,
    )


# ------------------------------------------------------------------ reading


def view(item: DeliveryAttemptItem | AttemptRecord) -> dict:
    """One attempt as the controller API and the CLI show it (as stored, or as just recorded)."""
    about = {name: getattr(item, name) for name in ABOUT_IDS if getattr(item, name)}
    return {
        "attempt_id": item.attempt_id,
        "webhook_id": item.webhook_id,
        "event_type": item.event_type,
        "request_id": item.request_id,
        **about,
        "attempted_at": clock.isoformat(item.at),
        "attempt": int(item.attempt),
        "outcome": item.outcome,
        "http_status": int(item.http_status) if item.http_status is not None else None,
        "latency_ms": int(item.latency_ms) if item.latency_ms is not None else None,
        "error_class": item.error_class,
        "redelivery": item.redelivery_id is not None,
    }


@dataclass(frozen=True)
class Filters:
    status: str | None = None
    event_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def signed_part(self) -> str:
        moments = [clock.isoformat(moment) if moment else "" for moment in (self.since, self.until)]
        return "\x00".join([self.status or "", self.event_type or "", *moments])


def _check_filters(filters: Filters) -> None:
    if filters.status is not None and filters.status not in OUTCOMES:
        raise InvalidInput(f"status is one of {', '.join(OUTCOMES)}", fields={"status": "invalid_choice"})
    if filters.event_type is not None and filters.event_type not in EVENT_TYPES.values():
        raise InvalidInput("not a webhook event type", fields={"event_type": "invalid_choice"})
    if filters.since and filters.until and filters.since > filters.until:
        raise InvalidInput("since must not be after until", fields={"since": "after_until"})


def _sign_cursor(controller_id: str, filters: Filters, payload: str) -> str:
    return hashing.keyed_hash("delivery_cursor", f"{controller_id}\x00{filters.signed_part()}\x00{payload}")[:32]


def _encode_cursor(controller_id: str, filters: Filters, last_key: dict) -> str:
    encoded = base64.urlsafe_b64encode(last_key["sk"]["S"].encode()).decode().rstrip("=")
    return f"{encoded}.{_sign_cursor(controller_id, filters, encoded)}"


def _decode_cursor(controller_id: str, filters: Filters, cursor: str) -> dict:
    """Signed with the caller and its filters: a cursor only continues the listing that issued it."""
    encoded, _, signature = cursor.partition(".")
    if not hashing.same_text(signature, _sign_cursor(controller_id, filters, encoded)):
        raise InvalidInput("that cursor does not belong to this listing", fields={"cursor": "invalid_cursor"})
    sort_key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    return {"pk": {"S": DeliveryAttemptItem.key(controller_id)}, "sk": {"S": sort_key}}


def list_page(
    controller_id: str, filters: Filters = Filters(), *, cursor: str | None = None, limit: int = DEFAULT_PAGE
) -> tuple[list[dict], str | None]:
    """A page of the controller's attempts, newest first, and the next page's cursor: one query on
    the controller's log partition (the period is a key range; status and event type filter it)."""
    _check_filters(filters)
    limit = max(1, min(limit, MAX_PAGE))
    low = DeliveryAttemptItem.SK_PREFIX + (_sortable(filters.since) if filters.since else "")
    high = DeliveryAttemptItem.SK_PREFIX + (_sortable(filters.until) if filters.until else "") + "~"
    condition = None
    if filters.status:
        condition = DeliveryAttemptItem.outcome == filters.status
    if filters.event_type:
        by_type = DeliveryAttemptItem.event_type == filters.event_type
        condition = by_type if condition is None else condition & by_type
    live = DeliveryAttemptItem.expires_at > clock.epoch()  # past its 90 days: absent, whatever TTL did
    results = DeliveryAttemptItem.query(
        DeliveryAttemptItem.key(controller_id),
        DeliveryAttemptItem.sk.between(low, high),
        filter_condition=live if condition is None else condition & live,
        scan_index_forward=False,
        limit=limit,
        last_evaluated_key=_decode_cursor(controller_id, filters, cursor) if cursor else None,
    )
    items = [view(item) for item in results]
    last_key = results.last_evaluated_key
    return items, _encode_cursor(controller_id, filters, last_key) if last_key else None


def last_attempt(controller_id: str) -> dict | None:
    page, _ = list_page(controller_id, limit=1)
    return page[0] if page else None


def _delivery(controller_id: str, webhook_id: str) -> DeliveryItem:
    """The caller's delivery; another controller's, an unknown or an expired one is not found."""
    if not webhook_id.startswith("msg_") or len(webhook_id) > 64:
        raise NotFound("no such delivery")
    found = retention.live_item(
        DeliveryItem, DeliveryAttemptItem.key(controller_id), DeliveryItem.sort_key(webhook_id), consistent_read=True
    )
    if found is None:
        raise NotFound("no such delivery")
    return found


# ------------------------------------------------------------------ redelivery


def _require_enabled(controller: ControllerItem) -> None:
    state = endpoint_state(controller, with_last_attempt=False)
    if state["state"] == NOT_WEBHOOK:
        raise Conflict("this controller does not receive webhooks", code="not_webhook")
    if state["state"] == DISABLED:
        raise Conflict(
            f"your webhook endpoint is disabled ({state['disabled_reason']}); enable it first", code="webhook_disabled"
        )


def _refusal(delivery: DeliveryItem, request: RequestItem | None) -> Conflict | None:
    """Why this delivery may not be sent again, or None."""
    if delivery.message_event == "test":
        return Conflict("a test is not redelivered: send a new one", code="not_redeliverable")
    if delivery.request_id is None:
        return None  # breach.notice, policy.updated: the dispatcher reads their data at send time
    if request is None:
        return Conflict("the request is gone (past its retention time)", code=REQUEST_GONE)
    if delivery.message_event == "route":
        if request.status == Status.CANCELLED.value:
            return Conflict("the subject cancelled the request", code="request_cancelled")
        if not any(queries.personal_fields(request).values()):
            purged_at = request.personal_purged_at or clock.now()
            return Conflict(
                f"the subject's personal fields were purged at {clock.isoformat(purged_at)}, as the retention "
                "rules require; they are not sent again. The request itself: GET /v1/controller/requests/{id}",
                code=PURGED,
                fields={name: PURGED for name in RequestItem.PERSONAL_FIELDS},
            )
    return None


def _request_of(delivery: DeliveryItem) -> RequestItem | None:
    if not delivery.request_id:
        return None
    try:
        return queries.load_request(delivery.request_id)
    except NotFound:
        return None


def _message_body(delivery: DeliveryItem, redelivery_id: str) -> dict:
    ids = {name: getattr(delivery, name) for name in ABOUT_IDS}
    body = {"event": delivery.message_event, "redelivery_id": redelivery_id, **{k: v for k, v in ids.items() if v}}
    if delivery.request_id:
        body["request_id"] = delivery.request_id
    if not delivery.request_id or delivery.message_event in CONTROLLER_EVENTS:
        body["controller_id"] = delivery.controller_id
    return body


def _queue(controller: ControllerItem, delivery: DeliveryItem, actor: str, now: datetime) -> dict:
    """Mark the delivery's redelivery as waiting (once) and queue it. Ids only on the queue."""
    waiting = delivery.redelivery_id
    if waiting and delivery.redelivery_asked_at and delivery.redelivery_asked_at > now - REDELIVERY_PENDING:
        return {"webhook_id": delivery.webhook_id, "redelivery_id": waiting, "status": "already_queued"}
    redelivery_id = hashing.new_id("rdl")
    free = DeliveryItem.redelivery_id.does_not_exist() | (DeliveryItem.redelivery_asked_at <= now - REDELIVERY_PENDING)
    event = audit.event(controller.pk, action="redelivery_requested", actor=actor, at=now, cause=delivery.webhook_id)
    try:
        with transaction() as tx:
            tx.update(
                delivery,
                actions=[DeliveryItem.redelivery_id.set(redelivery_id), DeliveryItem.redelivery_asked_at.set(now)],
                condition=DeliveryItem.pk.exists() & free,
            )
            tx.save(event, condition=AuditEvent.sk.does_not_exist())
    except TransactWriteError as error:
        if not condition_failed(error):
            raise  # a throttle or a conflict says nothing about who asked: the caller may retry
        # Asked for at the same moment by another call: that one queues it.
        delivery.refresh(consistent_read=True)
        return {"webhook_id": delivery.webhook_id, "redelivery_id": delivery.redelivery_id, "status": "already_queued"}
    outbox.enqueue_redelivery(_message_body(delivery, redelivery_id))
    return {"webhook_id": delivery.webhook_id, "redelivery_id": redelivery_id, "status": "queued"}


def redeliver(controller: ControllerItem, webhook_id: str, *, actor: str | None = None) -> dict:
    """Send one delivery again (same webhook-id, so a receiver's dedupe holds), through the queue."""
    delivery = _delivery(controller.controller_id, webhook_id)
    _require_enabled(controller)
    refusal = _refusal(delivery, _request_of(delivery))
    if refusal is not None:
        raise refusal
    return _queue(controller, delivery, actor or controller_actor(controller.controller_id), clock.now())


def _not_delivered_since(
    controller_id: str, since: datetime, until: datetime | None, event_type: str | None
) -> tuple[list[DeliveryItem], bool]:
    """Deliveries whose latest attempt failed in [since, until] and that wait for no redelivery,
    oldest first, at most the cap; and whether there are more. One query per outcome on the
    outcome index."""
    now = clock.now()
    low, high = _sortable(since), (_sortable(until) if until else "9999") + "~"
    wanted = (
        (DeliveryItem.expires_at > int(now.timestamp()))
        & (DeliveryItem.message_event != "test")  # a test is never redelivered: not even looked at
        & (DeliveryItem.redelivery_id.does_not_exist() | (DeliveryItem.redelivery_asked_at <= now - REDELIVERY_PENDING))
    )
    if event_type:
        wanted = wanted & (DeliveryItem.event_type == event_type)
    found: list[DeliveryItem] = []
    for outcome in NOT_DELIVERED:
        found += DeliveryItem.by_outcome.query(
            DeliveryItem.outcome_partition(controller_id, outcome),
            DeliveryItem.gsi1sk.between(low, high),
            filter_condition=wanted,
            limit=MAX_BULK_REDELIVERY + 1,
        )
    found.sort(key=lambda item: item.last_at)
    return found[:MAX_BULK_REDELIVERY], len(found) > MAX_BULK_REDELIVERY


def redeliver_failed(
    controller: ControllerItem,
    *,
    since: datetime,
    until: datetime | None = None,
    event_type: str | None = None,
    actor: str | None = None,
) -> dict:
    """Queue every delivery whose latest attempt since `since` failed (at most MAX_BULK_REDELIVERY
    a call, oldest first; one already waiting for its redelivery is left out). What may not be
    sent again is listed with its reason, never queued."""
    _check_filters(Filters(event_type=event_type, since=since, until=until))
    _require_enabled(controller)
    deliveries, more = _not_delivered_since(controller.controller_id, since, until, event_type)
    with_request = [item for item in deliveries if item.request_id]
    loaded = get_many([(RequestItem, RequestItem.key(str(i.request_id)), RequestItem.SK) for i in with_request])
    requests = {
        item.request_id: found
        for item, found in zip(with_request, loaded)
        if found is not None and queries.is_visible(found)
    }
    now = clock.now()
    queued, already, skipped = [], [], []
    for delivery in deliveries:
        refusal = _refusal(delivery, requests.get(delivery.request_id))
        if refusal is not None:
            skipped.append({"webhook_id": delivery.webhook_id, "reason": refusal.code})
            continue
        answer = _queue(controller, delivery, actor or controller_actor(controller.controller_id), now)
        (queued if answer["status"] == "queued" else already).append(answer["webhook_id"])
    # More than the cap: the next call from `next_since` goes on (what this one queued waits, so it
    # is not taken again; what it skipped is considered once more).
    next_since = clock.isoformat(deliveries[-1].last_at) if more else None
    return {
        "queued": queued,
        "already_queued": already,
        "skipped": skipped,
        "more": more,
        "next_since": next_since,
        "cap": MAX_BULK_REDELIVERY,
    }


# ------------------------------------------------------------------ the endpoint's state


def endpoint_state(controller: ControllerItem, *, with_last_attempt: bool = True) -> dict:
    """Enabled, disabled (why, since when) or not a webhook controller; and its latest attempt."""
    if controller_lookup.state_of(controller) != controller_lookup.ACTIVE:
        state, reason, since = DISABLED, OPERATOR, controller.state_changed_at
    elif controller.delivery != DeliveryMode.WEBHOOK:
        state, reason, since = NOT_WEBHOOK, None, None
    elif controller.webhook_disabled_reason:
        state, reason, since = DISABLED, controller.webhook_disabled_reason, controller.webhook_disabled_at
    else:
        state, reason, since = ENABLED, None, None
    answer = {
        "delivery": controller.delivery,
        "state": state,
        "disabled_reason": reason,
        "disabled_since": clock.isoformat(since) if since else None,
        # the host only: a URL's path or query may hold a token of the controller's
        "endpoint_host": urlsplit(controller.webhook_url).hostname if controller.webhook_url else None,
    }
    if with_last_attempt:
        answer["last_attempt"] = last_attempt(controller.controller_id)
    return answer


def awaits_enabling_test(controller: ControllerItem) -> bool:
    """Whether a test event may enable this controller's endpoint: the dispatcher disabled it (410)
    and the controller itself is active. One the operator disabled stays so."""
    return (
        controller_lookup.state_of(controller) == controller_lookup.ACTIVE
        and controller.delivery == DeliveryMode.WEBHOOK
        and controller.webhook_disabled_reason == GONE_410
    )


def ask_enable(controller: ControllerItem) -> dict:
    """Queue the test event that enables a disabled endpoint again if it answers 2xx. The
    dispatcher sends it (only it unseals webhook secrets); GET /v1/controller/webhook then says
    enabled, or shows the failed test as its latest attempt."""
    state = endpoint_state(controller, with_last_attempt=False)
    if state["state"] == NOT_WEBHOOK:
        raise Conflict("this controller does not receive webhooks", code="not_webhook")
    if state["state"] == ENABLED:
        raise Conflict("your webhook endpoint is enabled", code="webhook_enabled")
    if not awaits_enabling_test(controller):
        raise Conflict("the operator disabled deliveries to you; ask them", code="operator_disabled")
    test_id = hashing.new_id("tst")
    message = DeliveryMessage(request_id="", event="test", controller_id=controller.controller_id, test_id=test_id)
    outbox.enqueue_delivery(
        request_id="", event="test", controller_id=controller.controller_id, test_id=test_id, enable="1"
    )
    return {"test_id": test_id, "webhook_id": webhooks.webhook_id(message.delivery_id), "status": "queued"}


def enable_after_test(controller: ControllerItem, logged: AttemptRecord) -> bool:
    """The enabling test was answered 2xx: the endpoint is enabled, audited, with the test's
    attempt, in one conditional write. False (the attempt logged alone) if it changed meanwhile."""
    event = audit.event(
        controller.pk,
        action="webhook_enabled",
        actor=controller_actor(controller.controller_id),
        at=logged.at,
        cause="test_delivered",
    )
    try:
        with transaction() as tx:
            tx.update(
                controller,
                actions=[
                    ControllerItem.webhook_disabled_reason.remove(),
                    ControllerItem.webhook_disabled_at.remove(),
                    ControllerItem.updated_at.set(logged.at),
                ],
                # still disabled by the 410, still a webhook controller, not disabled by the operator since
                condition=(ControllerItem.webhook_disabled_reason == GONE_410)
                & (ControllerItem.delivery == DeliveryMode.WEBHOOK)
                & (ControllerItem.state.does_not_exist() | (ControllerItem.state == controller_lookup.ACTIVE)),
            )
            tx.save(event, condition=AuditEvent.sk.does_not_exist())
            logged.write_into(tx)
    except TransactWriteError as error:
        if not condition_failed(error):
            raise  # the message comes back and the test is sent again
        logged.save()  # changed meanwhile (enabled, disabled by the operator, set anew)
        return False
    controller_lookup.forget_recent(controller)
    controller.webhook_disabled_reason = None
    controller.webhook_disabled_at = None
    return True
