"""Abuse limits: how much one address, one source or one request can cause, per time window.

Each limit counts in fixed windows (an hour, a minute, a day, aligned to the epoch). A window's
counter is an item of its own (`LIMIT#<limit>#<key>` / `WINDOW#<start>`), never an attribute of a
request, and it is spent by one atomic conditional UpdateItem (`ADD used :1` if `used < maximum`):
parallel calls cannot spend more than the maximum, whatever their interleaving. On a submission
the address's spend rides in the submission's own transaction; the source's, which many callers
share, is a write of its own (an item in many concurrent transactions is a conflict hotspot).

Keys are keyed hashes (the normalized address's keyed hash hashed again for this purpose; the
caller's IP address), so a counter names nobody, and each expires with its window (retention rule
`rate_limit_counter`). DynamoDB deletes TTL items up to two days late: a read of a counter counts
it only while it has not expired, and every window has its own item, so an old one never counts.

The limits (template parameters Limit*, through rightsdesk.platform.config):
- codes mailed per address per hour (strict): beyond it a submission is answered as usual (202)
  but nothing is stored and no mail goes, so the answer tells nothing about the address;
- submissions per source per minute (generous: many people can share one NAT): beyond it 429
  with Retry-After, which depends only on what that source itself sent;
- failed verification codes per address and per source per hour, across resubmissions: beyond
  either, a verification is refused as "too many attempts" before the code is compared;
- mails a controller's status notes send one subject, per request per day; a note identical to
  the last one mailed (same status, reason and due date) sends nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from pynamodb.exceptions import UpdateError

from rightsdesk.kernel import clock, retention
from rightsdesk.platform import hashing
from rightsdesk.platform.config import settings
from rightsdesk.store.items.limits import LimitCounterItem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    name: str
    window_seconds: int
    maximum: int


@dataclass(frozen=True)
class Window:
    start: int
    end: int


MINUTE, HOUR, DAY = 60, 3600, 86400


def codes_per_address() -> Limit:
    return Limit("address_codes", HOUR, settings().codes_per_address_per_hour)


def submissions_per_source() -> Limit:
    return Limit("source_submissions", MINUTE, settings().submissions_per_source_per_minute)


def failed_codes_per_address() -> Limit:
    return Limit("address_failed_codes", HOUR, settings().failed_codes_per_address_per_hour)


def failed_codes_per_source() -> Limit:
    return Limit("source_failed_codes", HOUR, settings().failed_codes_per_source_per_hour)


def subject_mails_per_request() -> Limit:
    return Limit("subject_mails", DAY, settings().subject_mails_per_request_per_day)


def address_key(subject_hash: str) -> str:
    """The counter key of an address: from its keyed hash (hashing.email_hash), hashed again so a
    counter cannot be joined to the address's requests by value."""
    return hashing.keyed_hash("limit_address", subject_hash)


def source_key(source: str) -> str:
    return hashing.keyed_hash("limit_source", source)


def window(limit: Limit, now: datetime) -> Window:
    start = int(now.timestamp()) // limit.window_seconds * limit.window_seconds
    return Window(start, start + limit.window_seconds)


def retry_after(limit: Limit, now: datetime) -> int:
    """Whole seconds until the window of `now` ends (at least 1)."""
    return max(1, window(limit, now).end - int(now.timestamp()))


def _counter(limit: Limit, key: str, now: datetime) -> tuple[LimitCounterItem, Window]:
    span = window(limit, now)
    return LimitCounterItem(f"LIMIT#{limit.name}#{key}", f"WINDOW#{span.start}"), span


def _expires(span: Window) -> int:
    return retention.expires_at(retention.Rule.RATE_LIMIT_COUNTER, datetime.fromtimestamp(span.end, tz=UTC))


def _spend(limit: Limit, key: str, now: datetime, extra_condition=None):
    counter, span = _counter(limit, key, now)
    actions = [LimitCounterItem.used.add(1), LimitCounterItem.expires_at.set(_expires(span))]
    condition = LimitCounterItem.used.does_not_exist() | (LimitCounterItem.used < limit.maximum)
    if extra_condition is not None:
        condition = condition & extra_condition
    return counter, actions, condition


def spend_in(tx, limit: Limit, key: str, now: datetime) -> None:
    """Add one use of `limit` to a transaction: the transaction fails (ConditionalCheckFailed on
    this item) if the window is used up."""
    counter, actions, condition = _spend(limit, key, now)
    tx.update(counter, actions=actions, condition=condition)


def spend(limit: Limit, key: str, now: datetime | None = None) -> bool:
    """Use `limit` once now; False (and nothing counted) if the window is used up."""
    counter, actions, condition = _spend(limit, key, now or clock.now())
    try:
        counter.update(actions=actions, condition=condition)
    except UpdateError as error:
        if _condition_failed(error):
            return False
        raise
    return True


def used(limit: Limit, key: str, now: datetime | None = None) -> int:
    """How much of the current window is used (an expired counter DynamoDB still holds counts 0)."""
    model, pk, sk = counter_key(limit, key, now)
    return used_by(retention.live_item(model, pk, sk, consistent_read=True))


def counter_key(limit: Limit, key: str, now: datetime | None = None) -> tuple[type[LimitCounterItem], str, str]:
    """Where the current window's counter is: for a read of several items in one call
    (rightsdesk.store.items.table.get_many), then `used_by`."""
    counter, _ = _counter(limit, key, now or clock.now())
    return LimitCounterItem, counter.pk, counter.sk


def used_by(counter: LimitCounterItem | None) -> int:
    """What a counter as read says is used: a missing or expired one counts 0."""
    return int(counter.used or 0) if counter is not None and retention.is_live(counter) else 0


def exhausted(limit: Limit, key: str, now: datetime | None = None) -> bool:
    return used(limit, key, now) >= limit.maximum


def note_once(limit: Limit, key: str, note: str, now: datetime | None = None) -> bool:
    """Use `limit` once for a message whose content is `note`; False if the window is used up or
    the last message counted in it was the same note (it would say nothing new). The note is kept
    as a keyed hash only."""
    fingerprint = hashing.keyed_hash("limit_note", note)
    extra = LimitCounterItem.last_note.does_not_exist() | (LimitCounterItem.last_note != fingerprint)
    counter, actions, condition = _spend(limit, key, now or clock.now(), extra)
    try:
        counter.update(actions=[*actions, LimitCounterItem.last_note.set(fingerprint)], condition=condition)
    except UpdateError as error:
        if _condition_failed(error):
            return False
        raise
    return True


def subject_note_allowed(request_id: str, status: str, reason: str | None, due_at: datetime | None) -> bool:
    """Whether a controller's status note may be mailed to the request's subject now: within the
    request's mails per day, and not the same note (status, reason, due date) as the last one."""
    note = "\x00".join((status, reason or "", clock.isoformat(due_at) if due_at else ""))
    allowed = note_once(subject_mails_per_request(), request_id, note)
    if not allowed:
        log.info(
            "status note not mailed: repeated, or over the request's mails for today", extra={"request_id": request_id}
        )
    return allowed


def _condition_failed(error: Exception) -> bool:
    return getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException"


def refused_in(error: Exception, positions: dict[int, Limit]) -> list[Limit]:
    """The limits whose spend made a transaction fail: `positions` maps each spend's index among
    the transaction's items (pynamodb orders them: condition checks, deletes, puts, updates)."""
    reasons = list(getattr(error, "cancellation_reasons", None) or ())
    return [
        limit
        for index, limit in positions.items()
        if index < len(reasons) and reasons[index] is not None and reasons[index].code == "ConditionalCheckFailed"
    ]
