"""What a controller sees of its requests and how it reports progress (the controller API's rules).

A controller sees only requests routed to it, from `forwarded` on: an unverified request is not
its business yet. Another controller's request, or one past its retention time, is "not found",
never "forbidden", so request ids cannot be probed across tenants. Personal fields are shown
while they exist; they are purged after delivery (rightsdesk.kernel.retention).
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pynamodb.exceptions import TransactWriteError

from rightsdesk.kernel import clock, deadlines
from rightsdesk.kernel.delivery_mode import DeliveryMode
from rightsdesk.kernel.errors import Conflict, IllegalTransition, InvalidInput, NotFound, Unauthorized
from rightsdesk.kernel.status import VISIBLE_TO_CONTROLLER, Status
from rightsdesk.kernel.status import values as status_values
from rightsdesk.platform import credentials, hashing
from rightsdesk.platform.operator_identity import controller_actor
from rightsdesk.routing import controller_lookup
from rightsdesk.store import audit, outbox, queries, request_view
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.requests import RequestItem
from rightsdesk.store.items.table import transaction
from rightsdesk.store.lifecycle import transition

if TYPE_CHECKING:
    from rightsdesk.routing.controller_forms import StatusReport

log = logging.getLogger(__name__)

# Told in the answer when rightsdesk could not tell the subject itself (Art. 12(3)).
SUBJECT_INFORMED_BY_CONTROLLER = (
    "rightsdesk no longer holds the subject's address (it is deleted one hour after delivery), so it "
    "could not tell them. Informing the subject of the extension and its reasons within the first "
    "month (GDPR Art. 12(3)) is now yours."
)
QUEUED, NO_ADDRESS, QUEUE_FAILED, NOTE_LIMITED = "queued", "no_address", "queue_failed", "note_limited"
# The query parameter's choices, in the lifecycle's order (the OpenAPI enums read so); the report's
# are rightsdesk.routing.controller_forms.AnsweredStatus.
VisibleStatus = Literal[status_values(VISIBLE_TO_CONTROLLER)]  # type: ignore[valid-type]
DEFAULT_PAGE = 50
MAX_PAGE = 100


# The status report's pydantic model (rightsdesk.routing.controller_forms) is built on first use,
# not when the controller API starts: `controller_requests.StatusReport` stays its name (the API's
# route signatures are resolved lazily), as rightsdesk.intake.submissions does for the form.
def __getattr__(name: str):
    if name == "StatusReport":
        from rightsdesk.routing import controller_forms

        return controller_forms.StatusReport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def actor(controller: ControllerItem) -> str:
    return controller_actor(controller.controller_id)


def caller(controller_id: str | None, api_key: str | None) -> ControllerItem:
    """The controller the authorizer let through, re-checked against its current key: API Gateway
    caches the authorizer's answer for minutes, a rotated-out key must stop working at once."""
    controller = controller_lookup.get_controller(controller_id) if controller_id else None
    if controller is None or not api_key or not credentials.key_matches(api_key, controller.api_key_hash):
        raise Unauthorized("a valid API key is required")
    # disabled after the authorizer's answer was cached
    if controller_lookup.state_of(controller) != controller_lookup.ACTIVE:
        raise Unauthorized("a valid API key is required")
    return controller


# ------------------------------------------------------------------ views


# The JSON Schemas of the answers below (the controller API's OpenAPI document publishes them).
LISTING_SCHEMA: dict = {
    "type": "object",
    "required": ["requests", "next_cursor"],
    "properties": {
        "requests": {"type": "array", "items": request_view.CONTROLLER_SUMMARY.schema()},
        "next_cursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next page; null: none"},
    },
}
DETAIL_SCHEMA: dict = request_view.CONTROLLER_DETAIL.schema()
REPORT_ANSWER_SCHEMA: dict = {
    **DETAIL_SCHEMA,
    "required": [*DETAIL_SCHEMA["required"], "subject_notification"],
    "properties": {
        **DETAIL_SCHEMA["properties"],
        "subject_notification": {
            "type": "object",
            "required": ["by", "message"],
            "properties": {
                "by": {"type": "string", "enum": ["rightsdesk", "controller"], "description": "Who tells the subject"},
                "rule": {"type": "string", "description": "The law that makes it yours (after an extension)"},
                "message": {"type": "string"},
            },
            "description": "Who tells the subject of this change",
        },
    },
}
ROTATION_SCHEMA: dict = {
    "type": "object",
    "required": ["webhook_secret", "previous_secret_valid_until"],
    "properties": {
        "webhook_secret": {"type": "string", "pattern": "^whsec_", "description": "Shown once"},
        "previous_secret_valid_until": {
            "type": "string",
            "format": "date-time",
            "description": "Until then the replaced secret signs too",
        },
    },
}
TEST_QUEUED_SCHEMA: dict = {
    "type": "object",
    "required": ["test_id", "status"],
    "properties": {"test_id": {"type": "string"}, "status": {"type": "string", "enum": ["queued"]}},
}


def summary(request: RequestItem) -> dict:
    return request_view.view(request, request_view.CONTROLLER_SUMMARY)


def detail(request: RequestItem) -> dict:
    return request_view.view(request, request_view.CONTROLLER_DETAIL)


# ------------------------------------------------------------------ reading


def _own(controller: ControllerItem, request_id: str) -> RequestItem:
    request = queries.load_request(request_id)  # NotFound once gone or past its retention time
    # One answer for "not yours", "not routed yet" and "gone": nothing to learn from the difference.
    if request.controller_id != controller.controller_id or not _visible(request):
        raise NotFound("no such request")
    return request


def _visible(request: RequestItem) -> bool:
    if request.status == Status.CANCELLED.value:
        return request.verified_at is not None  # cancelled before verification: never routed
    return request.status in VISIBLE_TO_CONTROLLER


def fetch(controller: ControllerItem, request_id: str) -> dict:
    """One request. A pull controller's first fetch is the delivery: forwarded -> delivered."""
    request = _own(controller, request_id)
    if controller.delivery == DeliveryMode.PULL and request.status == Status.FORWARDED.value:
        from rightsdesk.routing import delivery  # a pull controller's first fetch only: not at every start

        try:
            delivery.mark_delivered(request, controller, via=DeliveryMode.PULL, actor=actor(controller))
        except IllegalTransition:
            request.refresh(consistent_read=True)  # a parallel fetch delivered it first
    return detail(request)


def _sign_cursor(controller_id: str, status: str | None, payload: str) -> str:
    return hashing.keyed_hash("cursor", f"{controller_id}\x00{status or ''}\x00{payload}")[:32]


def _encode_cursor(controller_id: str, status: str | None, last_key: dict) -> str:
    payload = json.dumps([last_key["pk"]["S"], last_key["gsi1sk"]["S"]], separators=(",", ":"))
    encoded = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return f"{encoded}.{_sign_cursor(controller_id, status, encoded)}"


def _decode_cursor(controller_id: str, status: str | None, cursor: str) -> dict:
    """The listing's resume point. Signed, so a cursor only continues the listing that issued it."""
    encoded, _, signature = cursor.partition(".")
    if not hashing.same_text(signature, _sign_cursor(controller_id, status, encoded)):
        raise InvalidInput("that cursor does not belong to this listing", fields={"cursor": "invalid_cursor"})
    pk, gsi1sk = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    return {
        "pk": {"S": pk},
        "sk": {"S": RequestItem.SK},
        "gsi1pk": {"S": ControllerItem.key(controller_id)},
        "gsi1sk": {"S": gsi1sk},
    }


def list_page(
    controller_id: str, *, status: str | None = None, cursor: str | None = None, limit: int = DEFAULT_PAGE
) -> tuple[list[dict], str | None]:
    """A page of the controller's requests (GSI1: by status, then oldest first) and the next page's cursor."""
    limit = max(1, min(limit, MAX_PAGE))
    statuses = [status] if status else list(status_values(VISIBLE_TO_CONTROLLER))
    results = RequestItem.by_controller.query(
        ControllerItem.key(controller_id),
        RequestItem.gsi1sk.startswith(f"{status}#") if status else None,
        filter_condition=(RequestItem.sk == RequestItem.SK) & RequestItem.status.is_in(*statuses),
        limit=limit,
        last_evaluated_key=_decode_cursor(controller_id, status, cursor) if cursor else None,
    )
    items = [summary(item) for item in results if _visible(item) and queries.is_visible(item)]
    last_key = results.last_evaluated_key
    return items, _encode_cursor(controller_id, status, last_key) if last_key else None


# ------------------------------------------------------------------ reporting progress


def _extension(request: RequestItem, report: StatusReport, now: datetime) -> datetime | None:
    if report.extend_to is None:
        return None
    if report.status in ("completed", "rejected"):
        raise InvalidInput("a closed request has no due date to extend", fields={"extend_to": "not_allowed"})
    if request.verified_at is None or request.due_at is None:
        raise Conflict("this request has no due date yet", code="no_due_date")
    return deadlines.extended_due(report.extend_to, due=request.due_at, verified_at=request.verified_at, now=now)


def report_status(controller: ControllerItem, request_id: str, report: StatusReport) -> dict:
    """Record the controller's progress on the request, and tell the subject while we still can.
    The answer says who tells the subject (`subject_notification`)."""
    request = _own(controller, request_id)
    if report.status == "rejected" and not report.reason:
        raise InvalidInput("say why the request is rejected", fields={"reason": "required"})
    if report.extend_to is not None and not report.reason:
        raise InvalidInput("an extension needs a reason", fields={"reason": "required"})
    now = clock.now()
    extend_to = _extension(request, report, now)
    before = request.status
    target = report.status or before
    mail_id = _subject_mail_id(request_id, target, extend_to, now)
    updates = []
    if extend_to:
        from rightsdesk.routing import deadline_watch  # an extension only: the watch is not the API's to load

        updates += deadline_watch.extension_actions(extend_to)
    updates += _note_actions(request, report.reason, mail_id)
    if before == target:
        if extend_to is None:
            raise IllegalTransition(f"the request is already {target}")
        _extend_only(request, controller, updates, now)
        request.refresh(consistent_read=True)
    else:
        transition(  # reloads the request itself
            request,
            Status(target),
            actor=actor(controller),
            at=now,
            cause="due_extended" if extend_to else None,
            updates=updates,
        )
    told = _tell_subject(
        request, report.reason, mail_id, extended=extend_to is not None, status_changed=target != before
    )
    answer = detail(request)
    answer["subject_notification"] = _notification(told, extended=extend_to is not None)
    return answer


def _notification(told: str, *, extended: bool) -> dict:
    """Who tells the subject of this change: rightsdesk while it holds their address, else the controller."""
    if told == QUEUED:
        return {"by": "rightsdesk", "message": "the subject is told by email, in their language"}
    if told == QUEUE_FAILED:
        message = "rightsdesk could not queue its mail to the subject; please tell them yourself"
    elif told == NOTE_LIMITED:
        message = (
            "rightsdesk did not mail the subject again: the same note, or today's mails for this request "
            "were already sent; the status page shows the change"
        )
    elif extended:
        message = SUBJECT_INFORMED_BY_CONTROLLER
    else:
        message = "rightsdesk no longer holds the subject's address; the status page shows the change"
    return {"by": "controller", **({"rule": "GDPR Art. 12(3)"} if extended else {}), "message": message}


def _subject_mail_id(request_id: str, status: str, extend_to: datetime | None, at: datetime) -> str:
    """One mail per extension (by its new date) or per status report (by its second)."""
    if extend_to is not None:
        return f"extended-{request_id}-{int(extend_to.timestamp())}"
    return f"status-{request_id}-{status}-{int(at.timestamp())}"


def _note_actions(request: RequestItem, reason: str | None, mail_id: str) -> list:
    """The reason waits on the request for the notifier (queue messages carry ids only), in the
    status write itself, only while the subject's address is kept; a purge removes it."""
    if not reason or not queries.personal_fields(request)["email"]:
        return []
    return [RequestItem.mail_note.set(reason), RequestItem.mail_note_for.set(mail_id)]


def _extend_only(request: RequestItem, controller: ControllerItem, updates: list, now: datetime) -> None:
    event = audit.event(request.pk, action="due_extended", actor=actor(controller), at=now)
    try:
        with transaction() as tx:
            tx.update(
                request,
                actions=[*updates, RequestItem.updated_at.set(now)],
                condition=(RequestItem.status == request.status) & (RequestItem.due_at == request.due_at),
            )
            tx.save(event, condition=AuditEvent.sk.does_not_exist())
    except TransactWriteError as error:
        raise IllegalTransition("the request changed meanwhile; reload it and try again") from error


def _tell_subject(
    request: RequestItem, reason: str | None, mail_id: str, *, extended: bool, status_changed: bool = True
) -> str:
    """Email the subject about the change while their address is still kept: an extension names the
    new due date and the reason (Art. 12(3)), and the new status if it changed too. Says QUEUED,
    NO_ADDRESS, NOTE_LIMITED or QUEUE_FAILED. The status stands even if queueing the mail fails:
    the status page shows it either way. The notifier reads the address, the reason (the request's
    mail note for `mail_id`) and the due date when it sends: the message names the request only."""
    if not queries.personal_fields(request)["email"]:
        return NO_ADDRESS
    from rightsdesk.store import limits  # a note to the subject only: not at every start

    try:
        if not limits.subject_note_allowed(request.request_id, request.status, reason, request.due_at):
            return NOTE_LIMITED
        if extended:
            outbox.enqueue_mail(
                "due_extended",
                request_id=request.request_id,
                status=request.status,
                status_changed=int(status_changed),
                mail_id=mail_id,
            )
        else:
            outbox.enqueue_mail("status_changed", request_id=request.request_id, status=request.status, mail_id=mail_id)
    except Exception as error:  # noqa: BLE001 - see docstring
        log.error("could not queue the status email", extra={"error_type": type(error).__name__})
        return QUEUE_FAILED
    return QUEUED


# ------------------------------------------------------------------ webhook


def rotate_webhook_secret(controller: ControllerItem) -> dict:
    from rightsdesk.routing import registry  # its changes: a rotation is rare, the API's start is every cold start

    secret, previous_until = registry.rotate_webhook_secret(controller.controller_id, actor=actor(controller))
    return {"webhook_secret": secret, "previous_secret_valid_until": clock.isoformat(previous_until)}


def queue_test_event(controller: ControllerItem) -> dict:
    """Queue a signed test event to the controller's endpoint; the dispatcher sends it."""
    if controller.delivery != DeliveryMode.WEBHOOK:
        raise Conflict("this controller does not receive webhooks", code="not_webhook")
    if controller.webhook_disabled_reason:
        raise Conflict(
            "your webhook endpoint is disabled; POST /v1/controller/webhook/enable sends the test that enables it",
            code="webhook_disabled",
        )
    test_id = hashing.new_id("tst")
    outbox.enqueue_delivery(request_id="", event="test", controller_id=controller.controller_id, test_id=test_id)
    return {"test_id": test_id, "status": "queued"}
