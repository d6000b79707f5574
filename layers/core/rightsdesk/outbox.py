"""Hand work to the queues: emails to the MailQueue, routing events to the DeliveryQueue.

Messages on these queues may carry personal data (an address, a code); the queues are
KMS-encrypted and nothing here logs a message body.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import boto3

from rightsdesk import hashing
from rightsdesk.config import settings


@lru_cache(maxsize=1)
def _sqs():
    return boto3.client("sqs")


def forget_clients() -> None:
    _sqs.cache_clear()


def enqueue_mail(*, to: str, template: str, locale: str, context: dict[str, Any], mail_id: str | None = None) -> str:
    """Queue one email; `mail_id` makes the send idempotent (the notifier sends each id once)."""
    mail_id = mail_id or hashing.new_id("mail")
    body = {"mail_id": mail_id, "template": template, "locale": locale, "to": to, "context": context}
    _sqs().send_message(QueueUrl=settings().mail_queue_url, MessageBody=json.dumps(body, default=str))
    return mail_id


def enqueue_delivery(*, request_id: str, event: str) -> None:
    """Ask the dispatcher to act on a request (`route`, `cancelled`, ...). Carries no personal data."""
    body = {"request_id": request_id, "event": event}
    _sqs().send_message(QueueUrl=settings().delivery_queue_url, MessageBody=json.dumps(body))
