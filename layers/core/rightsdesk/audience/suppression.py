"""Addresses SES reported as bouncing or complaining: notices skip them, and count them.

SES sends bounce and complaint events of our configuration set to the SesEventsFunction (through
EventBridge). A permanent bounce or a complaint suppresses the address; a transient bounce does not
(the mailbox was full, the server was down). Only the keyed hash of the address is stored, so the
suppression list itself holds no address. A contact with that address is marked suppressed too.

Which mails a suppression stops is decided in rightsdesk.outbound.notify: the notices we initiate (breach
notices, policy notices, list mail), not the answers to what someone just asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pynamodb.exceptions import UpdateError

from rightsdesk.kernel import clock, retention
from rightsdesk.platform import hashing
from rightsdesk.store.deletion import conditional_failure
from rightsdesk.store.items.audience import ContactItem, SuppressionItem

BOUNCE = "bounce"
COMPLAINT = "complaint"


@dataclass(frozen=True)
class Report:
    """What an SES event did; counts only, so it can be logged."""

    event_type: str
    suppressed: int = 0
    ignored: int = 0  # recipients of a transient bounce, or an event type we do not act on


def _addresses(entries: list | None) -> list[str]:
    found = []
    for entry in entries or []:
        address = entry.get("emailAddress") if isinstance(entry, dict) else None
        if isinstance(address, str) and "@" in address:
            found.append(address)
    return found


def from_ses_event(detail: dict) -> tuple[str, str | None, list[str]]:
    """(event type, reason or None, recipients) of an SES event record (the EventBridge `detail`,
    the same JSON SES publishes to SNS). Only permanent bounces and complaints have a reason."""
    event_type = str(detail.get("eventType") or detail.get("notificationType") or "")
    if event_type == "Bounce":
        bounce = detail.get("bounce") or {}
        recipients = _addresses(bounce.get("bouncedRecipients"))
        return event_type, (BOUNCE if bounce.get("bounceType") == "Permanent" else None), recipients
    if event_type == "Complaint":
        return event_type, COMPLAINT, _addresses((detail.get("complaint") or {}).get("complainedRecipients"))
    return event_type, None, []


def record_ses_event(detail: dict, at: datetime | None = None) -> Report:
    event_type, reason, recipients = from_ses_event(detail)
    if reason is None:
        return Report(event_type, ignored=len(recipients))
    for address in recipients:
        suppress(address, reason, at)
    return Report(event_type, suppressed=len(recipients))


def suppress(address: str, reason: str, at: datetime | None = None) -> None:
    """Record the address as suppressed (again: the latest event restarts its retention clock)."""
    at = at or clock.now()
    email_hash = hashing.email_hash(address)
    item = SuppressionItem(SuppressionItem.key(email_hash), SuppressionItem.SK)
    try:
        item.update(
            actions=[
                # A complaint outweighs a bounce: once someone called us spam, that is the reason kept.
                SuppressionItem.reason.set(COMPLAINT if reason == COMPLAINT else SuppressionItem.reason | reason),
                SuppressionItem.first_at.set(SuppressionItem.first_at | at),
                SuppressionItem.last_at.set(at),
                SuppressionItem.events.add(1),
                SuppressionItem.expires_at.set(retention.expires_at(retention.Rule.SUPPRESSION, at)),
            ],
            # An erased subject's entry never expires: a late bounce must not give it a clock.
            condition=SuppressionItem.reason.does_not_exist() | (SuppressionItem.reason != ERASURE),
        )
    except UpdateError as error:
        if not conditional_failure(error):
            raise
    try:
        ContactItem(ContactItem.key(email_hash), ContactItem.SK).update(
            actions=[ContactItem.suppressed.set(True), ContactItem.updated_at.set(at)],
            condition=ContactItem.pk.exists(),
        )
    except UpdateError as error:
        if not conditional_failure(error):  # no such contact: nothing to mark
            raise


def suppressed_among(addresses: list[str]) -> set[str]:
    """Which of these addresses are suppressed, in one BatchGetItem per hundred (a notifier batch
    asks once instead of once per mail)."""
    by_key = {SuppressionItem.key(hashing.email_hash(address)): address for address in set(addresses)}
    found = SuppressionItem.batch_get([(key, SuppressionItem.SK) for key in by_key])
    return {by_key[item.pk] for item in found if retention.is_live(item)}


def is_suppressed(address: str) -> bool:
    return is_suppressed_hash(hashing.email_hash(address))


def is_suppressed_hash(email_hash: str) -> bool:
    try:
        item = SuppressionItem.get(SuppressionItem.key(email_hash), SuppressionItem.SK)
    except SuppressionItem.DoesNotExist:
        return False
    return retention.is_live(item)


# ------------------------------------------------------------------ erasure

ERASURE = "erasure"


def suppress_erased(email_hash: str, at: datetime | None = None) -> None:
    """An erased subject's address, as its keyed hash only: the one thing kept, so that nothing we
    start is ever sent to it again. It has no expiry, since the promise has none."""
    at = at or clock.now()
    SuppressionItem(SuppressionItem.key(email_hash), SuppressionItem.SK).update(
        actions=[
            SuppressionItem.reason.set(ERASURE),
            SuppressionItem.first_at.set(SuppressionItem.first_at | at),
            SuppressionItem.last_at.set(at),
            SuppressionItem.events.add(1),
            SuppressionItem.expires_at.remove(),
        ]
    )
