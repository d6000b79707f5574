"""The operator's own optional lists (newsletter, marketing): one issue, queued to every member who
may still receive it.

Who may is decided twice, by the same rule (contacts.may_receive: no withdrawal of the list's
consent, no restriction or objection, no suppression): here, so nothing is queued for them, and by
the notifier just before sending, so a withdrawal between queueing and sending still counts.
An issue is queued once per member: its mail id is the issue's and the member's, so sending the
same issue again only finishes an interrupted run.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from pynamodb.exceptions import PutError

from rightsdesk.audience import contacts
from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import InvalidInput
from rightsdesk.platform.operator_identity import Actor
from rightsdesk.store import audit, outbox
from rightsdesk.store.deletion import conditional_failure
from rightsdesk.store.items.audience import ListIssueItem
from rightsdesk.store.items.audit import AuditEvent

ISSUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
MAX_SUBJECT = 200
MAX_BODY = 20000
BATCH = 100
# The audit event of a send, filed on the list's own partition (LIST#<list>, the table's key; its
# members are filed under the same name in GSI1 only): `rightsdesk newsletter history` reads it.
SENT_AUDIT = "issue_sent"

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Issue:
    issue: str  # the operator's name for it, e.g. 2026-11
    subject: str
    body: str  # plain text; blank lines part paragraphs
    list_name: str = contacts.NEWSLETTER.name


@dataclass(frozen=True)
class Sent:
    queued: int
    skipped: int  # members the list may no longer reach


def _check(issue: Issue) -> None:
    problems = {}
    if not ISSUE.fullmatch(issue.issue):
        problems["issue"] = "invalid_format"
    if not issue.subject.strip() or len(issue.subject) > MAX_SUBJECT or "\n" in issue.subject:
        problems["subject"] = "invalid_input"
    if not issue.body.strip() or len(issue.body) > MAX_BODY:
        problems["body"] = "invalid_input"
    mailing = contacts.LISTS.get(issue.list_name)
    if mailing is None or not mailing.optional or mailing.purpose is None:
        problems["list"] = "invalid_choice"
    if problems:
        raise InvalidInput("this issue cannot be sent as given", fields=problems)


def _store(issue: Issue, digest: str) -> None:
    """The issue waits in the table for the notifier, which makes each member's mail from it: queue
    messages carry ids only. Sending the same issue again keeps what was stored first."""
    now = clock.now()
    item = ListIssueItem(
        ListIssueItem.key(digest),
        ListIssueItem.SK,
        list_name=issue.list_name,
        issue=issue.issue,
        subject=issue.subject.strip(),
        body=issue.body.strip(),
        created_at=now,
        expires_at=retention.expires_at(retention.Rule.LIST_ISSUE, now),
    )
    try:
        item.save(condition=ListIssueItem.pk.does_not_exist())
    except PutError as error:
        if not conditional_failure(error):
            raise


def issue_context(digest: str) -> dict | None:
    """What a member's mail of this issue says; None once the issue is gone (rightsdesk.outbound.mail_kinds)."""
    item = retention.live_item(ListIssueItem, ListIssueItem.key(digest), ListIssueItem.SK)
    return {"subject": item.subject, "body": item.body} if item is not None else None


def send(issue: Issue, *, actor: Actor = "operator", progress: Progress | None = None) -> Sent:
    """Store the issue and queue a mail to every member who may receive it; then one audit event
    `issue_sent` on the list (`history`) names who sent it, the issue and the counts."""
    _check(issue)
    digest = hashlib.sha256(f"{issue.list_name}\x00{issue.issue}".encode()).hexdigest()[:12]
    _store(issue, digest)
    batch: list[dict] = []
    queued = skipped = 0

    def flush() -> None:
        nonlocal queued, batch
        if batch:
            queued += outbox.enqueue_mails(batch)
            if progress:
                progress(len(batch))
            batch = []

    for member in contacts.members(issue.list_name):
        if not contacts.may_receive(member.email_hash, issue.list_name):
            skipped += 1
            continue
        batch.append(
            outbox.mail_body(
                "newsletter",
                mail_id=f"list-{digest}-{member.email_hash[:32]}",
                issue=digest,
                contact=member.email_hash,
                list=issue.list_name,
            )
        )
        if len(batch) == BATCH:
            flush()
    flush()
    sent = Sent(queued=queued, skipped=skipped)
    # After the queueing, not in a transaction with it: the mails go on a queue (SQS), which no
    # DynamoDB transaction covers, and the event records how many went. A run cut short before this
    # line is finished by sending the issue again (each mail is sent once, by its mail id), which
    # records the event then. Ids and counts only: never the subject line, the body or a member.
    audit.event(
        contacts.list_partition(issue.list_name),
        action=SENT_AUDIT,
        actor=actor,
        cause=f"{issue.issue}:{digest}:queued_{sent.queued}:skipped_{sent.skipped}",
    ).save(condition=AuditEvent.sk.does_not_exist())
    return sent


def history(list_name: str, limit: int = 50) -> list[AuditEvent]:
    """The issues sent to an optional list, newest first: who sent which, and how many were queued."""
    mailing = contacts.mailing_list(list_name)
    return audit.latest(contacts.list_partition(mailing.name), limit)
