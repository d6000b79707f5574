"""Hand work to the queues: emails to the MailQueue, routing events to the DeliveryQueue.

Every message names what to do by ids only: no address, name, typed text, code or token, on any
queue or its dead-letter queue. A mail message is `{"mail_id", "kind", "ids"}`: the notifier makes
the mail from the table when it sends (rightsdesk.outbound.mail_kinds), so a purge also empties what a retry
or a redrive would send. `mail_body` refuses any value that is not id-shaped, and a message that
does not name the ids its kind needs (MAIL_IDS: the protocol lives here, below the kinds that use it).
"""

from __future__ import annotations

import json
import re

from rightsdesk.platform import aws_clients, hashing
from rightsdesk.platform.config import settings

# What a mail message may name: ids (request, controller, incident, contact hash, notice key),
# short words (a status, a notice, a cause) and whole numbers. Never an address ('@'), never text.
ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:#-]{0,127}$")

# Every kind of mail (rightsdesk.outbound.mail_kinds.KINDS, one entry each) and the ids its message
# always names; a message may name more (a status page's words, a list).
MAIL_IDS: dict[str, tuple[str, ...]] = {
    # to the subject
    "verification_code": ("request_id",),
    "request_verified": ("request_id",),
    "status_changed": ("request_id", "status"),
    "due_extended": ("request_id",),
    "own_request_overdue": ("request_id",),
    "own_request_received": ("request_id",),
    "own_request_answered": ("request_id", "outcome", "at"),
    # to an account's holder (rightsdesk.lifecycle): the inactivity period is its last active day
    "account_inactivity_warning": ("account_id", "period"),
    # to a controller's privacy contact
    "request_forwarded": ("request_id",),
    "request_notice": ("request_id", "notice"),
    "delivery_failed": ("request_id", "attempts", "cause"),
    "webhook_disabled": ("controller_id",),
    # notices
    "breach_notice": ("incident_id", "notice"),
    "breach_deadline_warning": ("incident_id", "warning"),
    "requests_overdue_digest": ("days", "request_0"),
    "policy": ("doc", "version"),
    "newsletter": ("issue", "contact", "list"),
}


def _sqs():
    return aws_clients.client("sqs")


def mail_body(kind: str, *, mail_id: str, **ids: str | int) -> dict:
    """One MailQueue message: `kind` (MAIL_IDS) and the ids it needs."""
    needed = MAIL_IDS.get(kind)
    if needed is None:
        raise ValueError(f"unknown mail kind {kind!r}")
    ids = {name: value for name, value in ids.items() if value is not None}
    missing = [name for name in needed if name not in ids]
    if missing:
        raise ValueError(f"a {kind} mail names {', '.join(missing)}")
    for name, value in ids.items():
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and ID.fullmatch(value))):
            raise ValueError(f"a mail message carries ids only; {name} is not one")
    if not ID.fullmatch(mail_id):
        raise ValueError("a mail id is an id")
    return {"mail_id": mail_id, "kind": kind, "ids": ids}


def enqueue_mail(kind: str, *, mail_id: str | None = None, **ids: str | int) -> str:
    """Queue one mail of `kind` about `ids`; `mail_id` makes the send idempotent (the notifier
    sends each id once)."""
    body = mail_body(kind, mail_id=mail_id or hashing.new_id("mail"), **ids)
    _sqs().send_message(QueueUrl=settings().mail_queue_url, MessageBody=json.dumps(body))
    return body["mail_id"]


def enqueue_delivery(*, request_id: str, event: str, **fields: str) -> None:
    """Ask the dispatcher to act on a request (`route`, `cancelled`, ...). Carries no personal data.

    `fields` are plain ids and words the event needs (an overdue `notice`, a test's `controller_id`).
    """
    body = {"request_id": request_id, "event": event, **fields}
    _sqs().send_message(QueueUrl=settings().delivery_queue_url, MessageBody=json.dumps(body))


def enqueue_redelivery(body: dict) -> None:
    """A delivery asked for again (rightsdesk.routing.delivery_log): the first message's ids and a
    redelivery id. Refuses anything that is not id-shaped."""
    for name, value in body.items():
        if not (isinstance(value, str) and ID.fullmatch(value)):
            raise ValueError(f"a delivery message carries ids only; {name} is not one")
    _sqs().send_message(QueueUrl=settings().delivery_queue_url, MessageBody=json.dumps(body))


# ------------------------------------------------------------------ fan-out (breach and policy notices)

SQS_BATCH = 10  # SendMessageBatch's limit


def enqueue_mails(bodies: list[dict]) -> int:
    """Queue many mails, ten per call; a message SQS refuses is sent once more, then it is an error."""
    queue = settings().mail_queue_url
    for start in range(0, len(bodies), SQS_BATCH):
        entries = [
            {"Id": str(n), "MessageBody": json.dumps(body)} for n, body in enumerate(bodies[start : start + SQS_BATCH])
        ]
        failed = _sqs().send_message_batch(QueueUrl=queue, Entries=entries).get("Failed") or []
        if failed:
            again = [entry for entry in entries if entry["Id"] in {f["Id"] for f in failed}]
            if _sqs().send_message_batch(QueueUrl=queue, Entries=again).get("Failed"):
                raise RuntimeError("the mail queue refused messages twice")
    return len(bodies)


def enqueue_controller_event(*, event: str, controller_id: str, **ids: str) -> None:
    """A webhook event about no request (`breach.notice`, `policy.updated`) for one controller.
    Carries ids only; the dispatcher builds the event's data from them (docs/notices.md)."""
    body = {"event": event, "controller_id": controller_id, **ids}
    _sqs().send_message(QueueUrl=settings().delivery_queue_url, MessageBody=json.dumps(body))
