"""Deleting and purging personal data, and the audit event each deletion leaves.

One writer records deletions: the DeletionAuditFunction, from the table's stream, whoever deleted.
It learns the cause from the record itself. The sweeper and erasures mark an item (`deleted_by`,
`deleted_at`) in a conditional write just before deleting it, so the mark is in the REMOVE's old
image; a purge names its cause (`purged_by`) in the purging write. DynamoDB's TTL leaves no mark,
but its stream record names the service principal. So every deletion gets exactly one event, also
those nobody announced (a TTL deletion days late, a delete by hand), and a retried stream batch
cannot double it: an event's key derives from the stream record's id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.operand import Path
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from rightsdesk.kernel import clock, retention
from rightsdesk.store.items.audit import AuditEvent


class Cause(str, Enum):
    TTL = "ttl"  # DynamoDB's TTL: principal dynamodb.amazonaws.com
    SWEEPER = "sweeper"  # rightsdesk.retention.sweeper, on a retention rule
    ERASURE = "erasure"  # on someone's instruction: a subject's cancellation, an operator's erasure
    DIRECT = "direct"  # unmarked: a verification code deleted when used, or a delete by hand


ACTORS = {
    Cause.TTL: "dynamodb-ttl",
    Cause.SWEEPER: "retention-sweeper",
    Cause.ERASURE: "erasure",
    Cause.DIRECT: "unattributed",
}
DELETED = "deleted"
PURGED = "personal_data_purged"
NOT_HELD = Path("legal_hold").does_not_exist()


def conditional_failure(error: Exception) -> bool:
    return getattr(error, "cause_response_code", None) in (
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
    )


# ------------------------------------------------------------------ writes that leave a cause


def purge_actions(model: type[Model], cause: Cause, at: datetime) -> list[Action]:
    """Remove the personal fields. A second purge changes nothing: the first keeps its time and cause."""
    fields = getattr(model, "PURGED_FIELDS", model.PERSONAL_FIELDS)
    actions: list[Action] = [getattr(model, name).remove() for name in fields]
    actions.append(model.personal_purged_at.set(model.personal_purged_at | at))
    actions.append(model.purged_by.set(model.purged_by | cause.value))
    return actions


def mark(item: Model, cause: Cause, condition: Condition | None = None, at: int | None = None) -> bool:
    """Announce a deletion on the item itself. False if it is gone, held, or `condition` fails."""
    model = type(item)
    guard = model.pk.exists() & NOT_HELD
    if condition is not None:
        guard = guard & condition
    at = clock.epoch() if at is None else at
    try:
        item.update(actions=[model.deleted_by.set(cause.value), model.deleted_at.set(at)], condition=guard)
    except UpdateError as error:
        if conditional_failure(error):
            return False
        raise
    return True


def delete_marked(item: Model, cause: Cause, condition: Condition | None = None) -> bool:
    """Delete an item `mark` announced, if nothing changed it since. False otherwise."""
    model = type(item)
    guard = (model.deleted_by == cause.value) & NOT_HELD
    if condition is not None:
        guard = guard & condition
    try:
        item.delete(condition=guard)
    except DeleteError as error:
        if conditional_failure(error):
            return False
        raise
    return True


def erase(item: Model, condition: Condition | None = None) -> bool:
    """Delete an item on someone's instruction (cause `erasure`); a legal hold refuses it."""
    return mark(item, Cause.ERASURE, condition) and delete_marked(item, Cause.ERASURE, condition)


# ------------------------------------------------------------------ the audit event of a deletion


@dataclass(frozen=True)
class Change:
    """One deletion or purge as the table's stream reported it, in plain Python values."""

    kind: str  # DELETED or PURGED
    pk: str
    sk: str
    event_id: str
    by_ttl_service: bool = False
    old: dict[str, Any] = field(default_factory=dict)
    new: dict[str, Any] = field(default_factory=dict)
    seen_at: int | None = None  # when the stream saw it (epoch seconds)


def cause_of(change: Change) -> Cause:
    # The service principal first: a mark left by a delete that lost its condition is not the cause.
    if change.kind == DELETED and change.by_ttl_service:
        return Cause.TTL
    marked = change.new.get("purged_by") if change.kind == PURGED else change.old.get("deleted_by")
    try:
        return Cause(marked)
    except ValueError:
        return Cause.DIRECT


def _moment(change: Change, cause: Cause) -> datetime:
    """When it happened: the deleter's own mark, else the stream's time (TTL), else now."""
    if change.kind == PURGED and change.new.get("personal_purged_at"):
        return _parse_time(change.new["personal_purged_at"])
    if cause is not Cause.TTL and change.kind == DELETED and change.old.get("deleted_at") is not None:
        return datetime.fromtimestamp(int(change.old["deleted_at"]), timezone.utc)
    if change.seen_at is not None:
        return datetime.fromtimestamp(int(change.seen_at), timezone.utc)
    return clock.now()


def _parse_time(value: Any) -> datetime:
    text = str(value)
    # pynamodb stores "2026-05-01T10:00:00.000000+0000"; isoformat with a colon parses as well
    for layout in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(text, layout).astimezone(timezone.utc)
        except ValueError:
            continue
    return clock.parse_iso(text)


def audit_event(change: Change) -> AuditEvent:
    """The event for a deletion or purge: ids, status, rule and cause; never the item's contents."""
    cause = cause_of(change)
    at = _moment(change, cause)
    iso = clock.isoformat(at)
    digest = hashlib.sha256(change.event_id.encode()).hexdigest()[:12]
    stamp = at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # as rightsdesk.store.audit sorts
    # The rule that was due is the old image's: a purge moves the item on to its next rule.
    rule = change.old.get("retention_rule") if cause in (Cause.SWEEPER, Cause.TTL) else None
    return AuditEvent(
        change.pk,
        f"{AuditEvent.SK_PREFIX}{stamp}#{change.kind}-{digest}",
        action=change.kind,
        actor=ACTORS[cause],
        at=at,
        from_status=change.old.get("status") if change.sk == "REQUEST" else None,
        cause=cause.value,
        rule=rule,
        item_kind=change.sk.split("#", 1)[0],
        expires_at=retention.expires_at(retention.Rule.SKELETON, at),
        gsi1pk=month_partition(at),
        gsi1sk=f"{iso}#{change.pk}#{change.sk}",
    )


def month_partition(at: datetime) -> str:
    return f"{AuditEvent.SK_PREFIX}{at.astimezone(timezone.utc):%Y-%m}"


def record(change: Change) -> AuditEvent | None:
    """Write the change's audit event once; None if a retried batch already wrote it."""
    event = audit_event(change)
    try:
        event.save(condition=AuditEvent.sk.does_not_exist())
    except PutError as error:
        if conditional_failure(error):
            return None
        raise
    return event


# ------------------------------------------------------------------ proof for an auditor


def months(since: datetime, until: datetime) -> list[str]:
    """The month partitions a period touches, oldest first."""
    found, year, month = [], since.year, since.month
    while (year, month) <= (until.year, until.month):
        found.append(f"{AuditEvent.SK_PREFIX}{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def events(since: datetime, until: datetime | None = None, cause: Cause | None = None):
    """Deletion and purge events in [since, until], oldest first: one query per month, no scan."""
    until = until or clock.now()
    low, high = clock.isoformat(since), clock.isoformat(until) + "~"  # "~" sorts after the "#<pk>" suffix
    condition = AuditEvent.cause == cause.value if cause is not None else None
    for partition in months(since, until):
        yield from AuditEvent.by_month.query(
            partition, AuditEvent.gsi1sk.between(low, high), filter_condition=condition
        )
