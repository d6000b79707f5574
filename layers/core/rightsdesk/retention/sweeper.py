"""The retention sweeper: deletes or purges what is due, found through the expiry index (GSI2).

DynamoDB's TTL deletes only within about two days; the sweeper keeps the short deadlines (a code's
15 minutes, delivered data's hour) and the purges TTL cannot do. It never scans: each day bucket
since the last sweep is queried for entries due by now, and each entry's item is read once,
consistently, to confirm it is still due. Items not yet due are never read, so a sweep costs what
expired, not what the table holds (`Report.items_read`; bench/retention_sweep.py measures it).

A bucket counts as swept (SweepState.swept_through) only when every due entry in it was handled
and its day ended GRACE_SECONDS ago. A sweep that stops half way (timeout, error, item limit)
resumes in that bucket; what it already did is gone from the index or fails its write condition,
so sweeping twice is harmless.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING

from pynamodb.exceptions import PutError, PynamoDBException, UpdateError

from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.retention import Rule
from rightsdesk.kernel.status import Status
from rightsdesk.store import audit, due_index
from rightsdesk.store.deletion import NOT_HELD, Cause, conditional_failure, delete_marked, mark, purge_actions
from rightsdesk.store.due_index import buckets, closable
from rightsdesk.store.items.requests import ChallengeItem, RequestItem
from rightsdesk.store.items.sweeps import SweepState
from rightsdesk.store.items.table import _Item

if TYPE_CHECKING:
    from rightsdesk.platform.operator_identity import Actor

log = logging.getLogger(__name__)

ACTOR = "retention-sweeper"
KINDS: dict[str, type[_Item]] = {RequestItem.SK: RequestItem, ChallengeItem.SK: ChallengeItem}


class Action(str, Enum):
    DELETE = "delete"
    PURGE = "purge"
    HELD = "held"  # under a legal hold: skipped and reported
    NOT_DUE = "not_due"  # rescheduled since the index was read
    GONE = "gone"  # deleted meanwhile (TTL, another sweep)
    UNKNOWN_RULE = "unknown_rule"


class Outcome(str, Enum):
    DELETED = "deleted"
    PURGED = "purged"
    # A pull controller never fetched the request: purged and marked undelivered (delivery_failed)
    UNDELIVERED = "undelivered"
    CHANGED = "changed"  # the item changed between the read and the conditional write
    ERROR = "error"


# ------------------------------------------------------------------ pure planning


@dataclass(frozen=True)
class Snapshot:
    """What the sweeper needs to know of an item, read from the item itself."""

    rule: str | None
    due_at: int | None
    held: bool


def plan(item: Snapshot | None, now: int) -> Action:
    if item is None:
        return Action.GONE
    if item.held:
        return Action.HELD
    if item.due_at is None or item.due_at > now:
        return Action.NOT_DUE
    try:
        then = retention.rule(Rule(item.rule)).then
    except ValueError:
        return Action.UNKNOWN_RULE
    return Action.DELETE if then == "delete" else Action.PURGE


# ------------------------------------------------------------------ the report


@dataclass
class Report:
    now: int
    dry_run: bool = False
    buckets: int = 0
    queries: int = 0
    items_read: int = 0
    by_rule: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    held: list[str] = field(default_factory=list)
    items: list[dict] = field(default_factory=list)  # dry run: what would go
    interrupted: str | None = None
    swept_through: int | None = None

    def count(self, rule: str | None, what: str) -> None:
        self.by_rule[rule or "unknown"][what] += 1

    def total(self, what: str) -> int:
        return sum(counts[what] for counts in self.by_rule.values())

    def as_dict(self) -> dict:
        """JSON-ready; keys and counts only (request ids are not personal data)."""
        return {
            "now": clock.isoformat(datetime.fromtimestamp(self.now, timezone.utc)),
            "dry_run": self.dry_run,
            "buckets": self.buckets,
            "queries": self.queries,
            "items_read": self.items_read,
            "by_rule": {rule: dict(counts) for rule, counts in sorted(self.by_rule.items())},
            "held": self.held,
            "items": self.items,
            "interrupted": self.interrupted,
            "swept_through": (
                clock.isoformat(datetime.fromtimestamp(self.swept_through, timezone.utc))
                if self.swept_through is not None
                else None
            ),
        }


# ------------------------------------------------------------------ reading


def _due_keys(bucket: int, now: int, report: Report) -> Iterator[list[tuple[str, str]]]:
    return due_index.due_keys(retention.expiry_bucket(bucket), now, report)


def _fetch(keys: list[tuple[str, str]], report: Report) -> dict[tuple[str, str], _Item]:
    by_kind: dict[type[_Item], list[tuple[str, str]]] = defaultdict(list)
    for key in keys:
        by_kind[KINDS.get(key[1], _Item)].append(key)
    found = {}
    for model, wanted in by_kind.items():
        for item in model.batch_get(wanted, consistent_read=True):
            report.items_read += 1
            found[(item.pk, item.sk)] = item
    return found


def snapshot(item: _Item | None) -> Snapshot | None:
    if item is None:
        return None
    due = int(item.retention_due_at) if item.retention_due_at is not None else None
    return Snapshot(rule=item.retention_rule, due_at=due, held=getattr(item, "legal_hold", None) is not None)


# ------------------------------------------------------------------ acting


def _unchanged(item: _Item):
    model = type(item)
    return (model.retention_due_at == item.retention_due_at) & (model.retention_rule == item.retention_rule)


def _delete(item: _Item, now: int, actor: Actor) -> Outcome:
    if not mark(item, Cause.SWEEPER, _unchanged(item), at=now):
        return Outcome.CHANGED
    if isinstance(item, RequestItem) and item.retention_rule == Rule.UNVERIFIED_REQUEST.value:
        if item.status == Status.IDENTITY_UNVERIFIED.value:  # not one the subject cancelled
            _record_expiry(item, actor)
        # The code's own 15 minutes are long past; this only catches one a failed sweep left.
        challenge = ChallengeItem(item.pk, ChallengeItem.SK)
        if mark(challenge, Cause.SWEEPER, at=now):
            delete_marked(challenge, Cause.SWEEPER)
    return Outcome.DELETED if delete_marked(item, Cause.SWEEPER, _unchanged(item)) else Outcome.CHANGED


def _record_expiry(request: RequestItem, actor: Actor) -> None:
    """The lifecycle's identity_unverified -> expired, on the audit trail that outlives the request.
    Keyed by the due time, so a sweep that stopped after writing it cannot write it twice."""
    due = datetime.fromtimestamp(int(request.retention_due_at), timezone.utc)
    event = audit.event(
        request.pk,
        action="status_changed",
        actor=actor,
        at=due,
        from_status=Status.IDENTITY_UNVERIFIED.value,
        to_status=Status.EXPIRED.value,
        cause=Rule.UNVERIFIED_REQUEST.value,
    )
    event.sk = f"{event.SK_PREFIX}{due.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#expired"
    try:
        event.save(condition=type(event).sk.does_not_exist())
    except PutError as error:
        if not conditional_failure(error):
            raise


def _purge(item: _Item, now: int) -> Outcome:
    model = type(item)
    if not hasattr(model, "PERSONAL_FIELDS"):
        return Outcome.ERROR
    at = datetime.fromtimestamp(now, timezone.utc)
    next_rule, start = retention.after_purge(item.created_at, item.verified_at)
    following = retention.schedule(next_rule, start, item.pk, item.sk)
    actions = [
        *purge_actions(model, Cause.SWEEPER, at),
        *[getattr(model, name).set(value) for name, value in following.items()],
        model.expires_at.set(following["retention_due_at"]),
    ]
    try:
        item.update(actions=actions, condition=_unchanged(item) & NOT_HELD)
    except UpdateError as error:
        if conditional_failure(error):
            return Outcome.CHANGED
        raise
    return Outcome.PURGED


def _never_fetched(request: RequestItem, now: int, actor: Actor) -> Outcome:
    """forwarded -> delivery_failed with the purge, in one audited write: the pull controller did not
    fetch the request by its due date and the rule's period after it (reminded by the deadline
    notices meanwhile). The operator is alerted (metric PullRequestsUndelivered, its alarm)."""
    from rightsdesk.kernel.errors import IllegalTransition
    from rightsdesk.store.lifecycle import transition

    at = datetime.fromtimestamp(now, timezone.utc)
    next_rule, start = retention.after_purge(request.created_at, request.verified_at)
    following = retention.schedule(next_rule, start, request.pk, request.sk)
    try:
        transition(
            request,
            Status.DELIVERY_FAILED,
            actor=actor,
            cause="never_fetched",
            at=at,
            updates=[
                *purge_actions(RequestItem, Cause.SWEEPER, at),
                *[getattr(RequestItem, name).set(value) for name, value in following.items()],
                RequestItem.expires_at.set(following["retention_due_at"]),
            ],
        )
    except IllegalTransition:
        return Outcome.CHANGED  # fetched (or cancelled) at the last moment: that stands
    return Outcome.UNDELIVERED


def act(item: _Item, action: Action, now: int, actor: Actor = ACTOR) -> Outcome:
    if (
        isinstance(item, RequestItem)
        and item.retention_rule == Rule.UNFETCHED_PULL_REQUEST.value
        and item.status == Status.FORWARDED.value
    ):
        return _never_fetched(item, now, actor)
    return _delete(item, now, actor) if action is Action.DELETE else _purge(item, now)


# ------------------------------------------------------------------ state


# ------------------------------------------------------------------ the sweep

Progress = Callable[[str, int], None]  # ("found", n) as entries are read, ("done", 1) per entry


def sweep(
    *,
    now: int | None = None,
    dry_run: bool = False,
    max_items: int | None = None,
    deadline: float | None = None,
    progress: Progress | None = None,
    actor: Actor = ACTOR,
) -> Report:
    """Handle everything due by `now`. `max_items` and `deadline` (time.monotonic()) stop it early;
    the next sweep resumes where it stopped. A dry run reads the same and writes nothing. `actor`
    names who ran it on the audit events it writes: the schedule, or an operator from the CLI."""
    now = clock.epoch() if now is None else now
    report = Report(now=now, dry_run=dry_run)
    state = due_index.progress(SweepState)
    report.items_read += 1 if state is not None else 0
    swept, floor = due_index.start(state)
    handled = 0
    contiguous = True
    try:
        for bucket in buckets(swept, floor, now):
            report.interrupted = _stop(handled, None, deadline)
            if report.interrupted:
                return report
            report.buckets += 1
            complete = True
            for keys in _due_keys(bucket, now, report):
                if progress:
                    progress("found", len(keys))
                items = _fetch(keys, report)
                for key in keys:
                    report.interrupted = _stop(handled, max_items, deadline)
                    if report.interrupted:
                        return report
                    complete &= _one(key, items.get(key), now, dry_run, report, actor)
                    handled += 1
                    if progress:
                        progress("done", 1)
            contiguous &= complete
            if contiguous and not dry_run and closable(bucket, now):
                report.swept_through = bucket
    finally:
        if report.swept_through is not None and report.swept_through != swept:
            due_index.record_progress(SweepState, report.swept_through)
    return report


def _stop(handled: int, max_items: int | None, deadline: float | None) -> str | None:
    if max_items is not None and handled >= max_items:
        return "max_items"
    if deadline is not None and time.monotonic() >= deadline:
        return "deadline"
    return None


def _one(key: tuple[str, str], item: _Item | None, now: int, dry_run: bool, report: Report, actor: Actor) -> bool:
    """Handle one index entry; False if it must be tried again (the bucket stays open)."""
    seen = snapshot(item)
    action = plan(seen, now)
    rule = seen.rule if seen is not None else None
    if action is Action.HELD:
        report.held.append(f"{key[0]}|{key[1]}")
    if action not in (Action.DELETE, Action.PURGE):
        report.count(rule, action.value)
        return action is not Action.UNKNOWN_RULE
    if dry_run:
        report.count(rule, action.value)
        report.items.append(
            {
                "pk": key[0],
                "sk": key[1],
                "rule": rule,
                "action": action.value,
                "due_at": clock.isoformat(datetime.fromtimestamp(seen.due_at, timezone.utc)),
            }
        )
        return True
    try:
        outcome = act(item, action, now, actor)
    except PynamoDBException as error:
        # The cause's message may quote item values; its type says enough.
        log.warning("retention sweep: %s on one item; it stays due", type(error.cause or error).__name__)
        outcome = Outcome.ERROR
    report.count(rule, outcome.value)
    return outcome is not Outcome.ERROR
