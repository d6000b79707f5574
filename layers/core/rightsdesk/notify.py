"""Send one queued email: render it in the recipient's language and hand it to SES.

Every mail goes out as one SendRawEmail call with a MIME message built here (rightsdesk.mime),
because only a raw message can carry the List-Unsubscribe headers of optional-list mail.

The notices we start (breach, policy, list mail: notice_mail.SUPPRESSIBLE) are not sent to an
address that bounced or complained before; mails that answer what someone just did (their
verification code, their request's progress) and operational mails about one request still go,
since the person typed the address a moment ago or the request must reach its controller (SES's
account-level suppression list still guards those in production).

`send` is what the notifier makes idempotent per mail id; `settle` records the outcome where it is
tracked (a breach notice) and runs after it, so a redelivered message retries the bookkeeping
without sending the mail again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from rightsdesk import aws_clients, contacts, mail, mime, notice_mail, own_mail, suppression, unsubscribe
from rightsdesk.config import settings

SENT = "sent"
SUPPRESSED = "suppressed"
FAILED = "failed"
# After the n-th failed receive the message comes back after RETRY_DELAYS_SECONDS[n-1]: a throttle
# or an SES hiccup clears in seconds; the last step leaves room to fix a configuration.
RETRY_DELAYS_SECONDS = (5, 30, 120, 600)
# = MailQueue RedrivePolicy.maxReceiveCount; the template passes it as MAIL_MAX_ATTEMPTS.
DEFAULT_MAX_ATTEMPTS = 5


def retry_delay(attempt: int) -> int:
    return RETRY_DELAYS_SECONDS[min(max(attempt, 1), len(RETRY_DELAYS_SECONDS)) - 1]


@dataclass(frozen=True)
class MailMessage:
    mail_id: str
    template: str
    locale: str
    to: str
    context: dict[str, Any]
    list_name: str | None = None  # an optional list: the mail carries an unsubscribe link
    contact: str | None = None  # the contact's keyed email hash, for that link
    track: dict[str, str] | None = None  # {"incident_id", "notice"}: the breach notice it settles

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> MailMessage:
        track = body.get("track")
        return cls(
            mail_id=str(body["mail_id"]),
            template=str(body["template"]),
            locale=str(body.get("locale") or "en"),
            to=str(body["to"]),
            context=dict(body.get("context") or {}),
            list_name=body.get("list") or None,
            contact=body.get("contact") or None,
            track={"incident_id": str(track["incident_id"]), "notice": str(track["notice"])} if track else None,
        )


class Pacer:
    """Keeps one notifier instance under its share of the SES send rate.

    SES allows `rate` messages per second for the account; at most `concurrency` instances run
    (the function's reserved concurrency), so each may send one message every concurrency / rate
    seconds. A rate of 0 means no pacing (the local run: moto has no quota).
    """

    def __init__(self, rate: float, concurrency: int = 1):
        self.interval = concurrency / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            time.sleep(delay)


def _ses():
    return aws_clients.client("ses")


def render(message: MailMessage, context: dict[str, Any]) -> mail.RenderedMail:
    if message.template in notice_mail.TEMPLATES:
        return notice_mail.render(message.template, message.locale, context)
    if message.template in own_mail.TEMPLATES:
        return own_mail.render(message.template, message.locale, context)
    return mail.render(message.template, message.locale, context)


def suppressible(message: MailMessage) -> bool:
    return message.template in notice_mail.SUPPRESSIBLE


def send(message: MailMessage, pacer: Pacer | None = None, suppressed: set[str] | None = None) -> dict[str, str]:
    """Send and return ids and an outcome only (idempotency stores it: no address in it).
    `suppressed`: the batch's suppressed addresses, looked up at once; None looks this one up."""
    if suppressible(message) and (
        message.to in suppressed if suppressed is not None else suppression.is_suppressed(message.to)
    ):
        return {"mail_id": message.mail_id, "result": SUPPRESSED}
    # Asked again at sending time: a withdrawal, restriction or objection since the mail was queued
    # stops it too (issue 6, contacts.may_receive).
    if message.list_name and message.contact and not contacts.may_receive(message.contact, message.list_name):
        return {"mail_id": message.mail_id, "result": SUPPRESSED}
    config = settings()
    context, headers = dict(message.context), {}
    if message.list_name:
        if not message.contact:
            raise ValueError("list mail needs the contact's hash for its unsubscribe link")
        url = unsubscribe.link(config.public_base_url, unsubscribe.issue(message.contact, message.list_name))
        context["unsubscribe_url"] = url
        headers = unsubscribe.headers(url)
    raw = mime.build(sender=config.mail_from, to=message.to, mail=render(message, context), headers=headers)
    request: dict[str, Any] = {
        "Source": config.mail_from,
        "Destinations": [message.to],
        "RawMessage": {"Data": raw},
        "Tags": [{"Name": "template", "Value": message.template}],
    }
    if config.ses_configuration_set:
        request["ConfigurationSetName"] = config.ses_configuration_set
    if pacer is not None:
        pacer.wait()
    response = _ses().send_raw_email(**request)
    return {"mail_id": message.mail_id, "result": SENT, "ses_message_id": response["MessageId"]}


def settle(message: MailMessage, outcome: str) -> bool:
    """Record the outcome of a tracked mail; True if that changed anything."""
    if message.track is None:
        return False
    from rightsdesk import breaches  # cold start: only breach notices are tracked

    return breaches.settle(message.track["incident_id"], message.track["notice"], outcome)
