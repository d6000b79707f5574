"""Send one queued email: make it from the table (rightsdesk.outbound.mail_kinds), render it in the
recipient's language and hand it to SES.

A message names its kind and ids only; the mail (recipient, what it says, a code or a status token)
is made here, when it is sent. If there is nothing to send any more (the record is gone or purged,
the request moved on), the mail is DROPPED: counted, never retried.

Every mail goes out as one SendRawEmail call with a MIME message built here (rightsdesk.render.mime),
because only a raw message can carry the List-Unsubscribe headers of optional-list mail.

The notices we start (breach, policy, list mail: MailKind.suppressible) are not sent to an
address that bounced or complained before; mails that answer what someone just did (their
verification code, their request's progress) and operational mails about one request still go,
since the person typed the address a moment ago or the request must reach its controller (SES's
account-level suppression list still guards those in production).

`send` is what the notifier makes idempotent per mail id; `record_outcome` records the outcome where a
kind tracks it (a breach notice, a request delivered by email) and runs after it, so a redelivered
message retries the bookkeeping without sending the mail again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from rightsdesk.audience import contacts, suppression, unsubscribe
from rightsdesk.kernel.retry import RetrySchedule
from rightsdesk.outbound import mail_kinds
from rightsdesk.outbound.mail_kinds import DROPPED, FAILED, SENT, SUPPRESSED  # noqa: F401 (the outcomes, by their old names)
from rightsdesk.platform import aws_clients
from rightsdesk.platform.config import settings
from rightsdesk.render import mail, mime, notice_mail, own_mail

# After the n-th failed receive the message comes back after RETRY_DELAYS_SECONDS[n-1]: a throttle
# or an SES hiccup clears in seconds; the last step leaves room to fix a configuration.
RETRY_DELAYS_SECONDS: tuple[int, ...] = (5, 30, 120, 600)
# = MailQueue RedrivePolicy.maxReceiveCount; the template passes it as MAIL_MAX_ATTEMPTS.
DEFAULT_MAX_ATTEMPTS = 5


RETRY_SCHEDULE = RetrySchedule(RETRY_DELAYS_SECONDS)
retry_delay = RETRY_SCHEDULE.delay


def after_failure(message: MailMessage, *, attempt: int, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> int | None:
    """A send failed on receive number `attempt` (1 = the first): the seconds until the message
    comes back, or None when that was the last allowed attempt. Then the mail's notice (or request)
    is marked failed where its kind tracks one, and the message goes on to the dead-letter queue."""
    if attempt < max_attempts:
        return retry_delay(attempt)
    record_outcome(message, FAILED)
    return None


@dataclass(frozen=True)
class MailMessage:
    """A MailQueue message as rightsdesk.store.outbox.mail_body made it: ids only."""

    mail_id: str
    kind: str
    ids: dict[str, Any]

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> MailMessage:
        kind = mail_kinds.kind(str(body["kind"]))
        ids = dict(body.get("ids") or {})
        if any(name not in ids for name in kind.needs):
            raise ValueError(f"a {kind.name} mail names {', '.join(kind.needs)}")
        return cls(mail_id=str(body["mail_id"]), kind=kind.name, ids=ids)

    @property
    def mail_kind(self) -> mail_kinds.MailKind:
        return mail_kinds.kind(self.kind)

    def resolve(self) -> mail_kinds.Mail | None:
        """The mail as the table says now, or None: nothing to send."""
        return self.mail_kind.resolve(self.ids, self.mail_id)


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


def render(made: mail_kinds.Mail, context: dict[str, Any]) -> mail.RenderedMail:
    if made.template in notice_mail.TEMPLATES:
        return notice_mail.render(made.template, made.locale, context)
    if made.template in own_mail.TEMPLATES:
        return own_mail.render(made.template, made.locale, context)
    return mail.render(made.template, made.locale, context)


def suppressible(message: MailMessage) -> bool:
    return message.mail_kind.suppressible


def send(
    message: MailMessage,
    pacer: Pacer | None = None,
    suppressed: set[str] | None = None,
    made: mail_kinds.Mail | None = None,
) -> dict[str, str]:
    """Send and return ids and an outcome only (idempotency stores it: no address in it).
    `suppressed`: the batch's suppressed addresses, looked up at once; None looks this one up.
    `made`: the mail as the batch already made it (resolve_batch); None makes it now."""
    made = made if made is not None else message.resolve()
    if made is None:
        return {"mail_id": message.mail_id, "result": DROPPED}
    if suppressible(message) and (
        made.to in suppressed if suppressed is not None else suppression.is_suppressed(made.to)
    ):
        return {"mail_id": message.mail_id, "result": SUPPRESSED}
    # Asked again at sending time: a withdrawal, restriction or objection since the mail was queued
    # stops it too (contacts.may_receive).
    if made.list_name and made.contact and not contacts.may_receive(made.contact, made.list_name):
        return {"mail_id": message.mail_id, "result": SUPPRESSED}
    config = settings()
    context, headers = dict(made.context), {}
    if made.list_name:
        if not made.contact:
            raise ValueError("list mail needs the contact's hash for its unsubscribe link")
        url = unsubscribe.link(config.public_base_url, unsubscribe.issue(made.contact, made.list_name))
        context["unsubscribe_url"] = url
        headers = unsubscribe.headers(url)
    raw = mime.build(sender=config.mail_from, to=made.to, mail=render(made, context), headers=headers)
    tags = {"template": made.template, "kind": message.kind, **made.tags}
    request: dict[str, Any] = {
        "Source": config.mail_from,
        "Destinations": [made.to],
        "RawMessage": {"Data": raw},
        "Tags": [{"Name": name, "Value": value} for name, value in tags.items()],
    }
    if config.ses_configuration_set:
        request["ConfigurationSetName"] = config.ses_configuration_set
    if pacer is not None:
        pacer.wait()
    response = _ses().send_raw_email(**request)
    return {"mail_id": message.mail_id, "result": SENT, "ses_message_id": response["MessageId"]}


@dataclass(frozen=True)
class Batch:
    """One invocation's mails, made at once (resolve_batch), and the suppressed addresses among them."""

    made: dict[str, mail_kinds.Mail | None]
    suppressed: set[str]

    def send(self, message: MailMessage, pacer: Pacer | None = None) -> dict[str, str]:
        """send() with what the batch already made; a mail it did not make is made and looked up now."""
        made = self.made.get(message.mail_id)
        return send(message, pacer, self.suppressed if made is not None else None, made)


def resolve_batch(messages: list[MailMessage]) -> tuple[dict[str, mail_kinds.Mail | None], set[str]]:
    """Make a batch's mails at once, and look up which of their suppressible recipients are
    suppressed in one call (a fan-out's batch would otherwise ask once per mail)."""
    made = {message.mail_id: message.resolve() for message in messages}
    addresses = [m.to for message in messages if suppressible(message) and (m := made[message.mail_id])]
    return made, suppression.suppressed_among(addresses) if addresses else set()


def record_outcome(message: MailMessage, outcome: str) -> bool:
    """Record the outcome where the mail's kind tracks it; True if that changed anything."""
    record = message.mail_kind.record_outcome
    return record(message.ids, outcome) if record is not None else False
