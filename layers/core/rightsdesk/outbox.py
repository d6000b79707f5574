"""Hand work to the queues: emails to the MailQueue, routing events to the DeliveryQueue.

Messages on these queues may carry personal data (an address, a code); the queues are
KMS-encrypted and nothing here logs a message body.
"""

from __future__ import annotations

import json
from typing import Any

from rightsdesk import aws_clients, hashing
from rightsdesk.config import settings


def _sqs():
    return aws_clients.client("sqs")


def enqueue_mail(*, to: str, template: str, locale: str, context: dict[str, Any], mail_id: str | None = None) -> str:
    """Queue one email; `mail_id` makes the send idempotent (the notifier sends each id once)."""
    mail_id = mail_id or hashing.new_id("mail")
    body = {"mail_id": mail_id, "template": template, "locale": locale, "to": to, "context": context}
    _sqs().send_message(QueueUrl=settings().mail_queue_url, MessageBody=json.dumps(body, default=str))
    return mail_id


def enqueue_delivery(*, request_id: str, event: str, **fields: str) -> None:
    """Ask the dispatcher to act on a request (`route`, `cancelled`, ...). Carries no personal data.

    `fields` are plain ids and words the event needs (an overdue `notice`, a test's `controller_id`).
    """
    body = {"request_id": request_id, "event": event, **fields}
    _sqs().send_message(QueueUrl=settings().delivery_queue_url, MessageBody=json.dumps(body))


# ------------------------------------------------------------------ fan-out (breach and policy notices)

SQS_BATCH = 10  # SendMessageBatch's limit


def mail_body(*, mail_id: str, to: str, template: str, locale: str, context: dict[str, Any], **extra: Any) -> dict:
    """One MailQueue message (rightsdesk.notify.MailMessage): `extra` is `list`/`contact` for list
    mail, `track` for a mail that settles a breach notice."""
    body = {"mail_id": mail_id, "template": template, "locale": locale, "to": to, "context": context}
    body.update({key: value for key, value in extra.items() if value is not None})
    return body


def enqueue_mails(bodies: list[dict]) -> int:
    """Queue many mails, ten per call; a message SQS refuses is sent once more, then it is an error."""
    queue = settings().mail_queue_url
    for start in range(0, len(bodies), SQS_BATCH):
        entries = [
            {"Id": str(n), "MessageBody": json.dumps(body, default=str)}
            for n, body in enumerate(bodies[start : start + SQS_BATCH])
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
