"""The lifecycle's rules, pure: when an account is warned, when it is erased, when a cancellation
must be carried out, and what the run does with an account it finds due.

Periods count from the END of the account's last active UTC day: activity is recorded once a day
(the first report of the day), so an account active at 23:59 is never treated as inactive since
00:00. Warned at 28 days therefore means: the 28th day after the last active day has ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from enum import Enum

from rightsdesk.kernel import erasure_causes, retention
from rightsdesk.platform import config

ACTIVE = "active"
WARNED = "warned"
CANCELLED = "cancelled"
STATES = (ACTIVE, WARNED, CANCELLED)

# Why the lifecycle opened an erasure (the request's audit cause and the annual report's counts).
CAUSES = erasure_causes.CAUSES
INACTIVITY = erasure_causes.INACTIVITY
CANCELLATION = erasure_causes.CANCELLATION
CONSENT_EXPIRY = erasure_causes.CONSENT_EXPIRY

# Monday..Friday (date.weekday() 0..4): the days the terms' "one business day" counts.
BUSINESS_DAYS = frozenset(range(5))


class Step(str, Enum):
    WARN = "warn"
    ERASE = "erase"
    HELD = "held"  # under a legal hold: nothing happens
    NOT_DUE = "not_due"  # moved on since the index was read (activity, a later threshold)
    GONE = "gone"


def day_of(at: datetime) -> str:
    return at.astimezone(timezone.utc).date().isoformat()


def end_of_day(day: str) -> datetime:
    """The first moment after the UTC day `day` (YYYY-MM-DD)."""
    following = date.fromordinal(date.fromisoformat(day).toordinal() + 1)
    return datetime.combine(following, time(0), tzinfo=timezone.utc)


def periods(account_class: str) -> retention.InactivityPeriods:
    """The class's thresholds; a class not configured has the default class's."""
    configured = config.account_class_days()
    warn_days, delete_days = configured.get(account_class) or configured[config.DEFAULT_ACCOUNT_CLASS]
    return retention.inactivity_periods(warn_days, delete_days)


def warn_at(account_class: str, last_active_day: str) -> datetime:
    return end_of_day(last_active_day) + periods(account_class).warn


def erase_at(account_class: str, last_active_day: str, warned_at: datetime | None) -> datetime:
    """The deletion threshold, and never less than the class's notice period (deletion less warning)
    after the warning actually went: a run that was late to warn does not shorten the holder's time
    to keep the account."""
    chosen = periods(account_class)
    threshold = end_of_day(last_active_day) + chosen.delete
    if warned_at is None:
        return threshold
    return max(threshold, warned_at + (chosen.delete - chosen.warn))


def cancel_by(received: datetime) -> datetime:
    """The terms' promise for a cancellation, "within one business day": by the end of the first
    business day (Monday to Friday, UTC) after the day it arrived. A cancellation on Friday is
    carried out by the end of Monday, one on Saturday or Sunday by the end of Monday too. The run
    opens the erasure at its next hourly pass, well before that."""
    day = received.astimezone(timezone.utc).date()
    following = date.fromordinal(day.toordinal() + 1)
    while following.weekday() not in BUSINESS_DAYS:
        following = date.fromordinal(following.toordinal() + 1)
    return end_of_day(following.isoformat())


@dataclass(frozen=True)
class Snapshot:
    """What the run needs to know of an account, read from the account itself."""

    state: str
    account_class: str
    last_active_day: str | None
    warned_at: datetime | None
    held: bool
    due_at: int | None
    # warned, with an address, but the warning's mail was never queued (a run stopped in between)
    warning_unsent: bool = False


def next_due(snapshot: Snapshot) -> int | None:
    """When the account's next threshold is due (epoch seconds), from its own dates."""
    if snapshot.state == CANCELLED:
        return snapshot.due_at
    if snapshot.last_active_day is None:
        return None
    if snapshot.state == WARNED:
        return int(erase_at(snapshot.account_class, snapshot.last_active_day, snapshot.warned_at).timestamp())
    return int(warn_at(snapshot.account_class, snapshot.last_active_day).timestamp())


def plan(snapshot: Snapshot | None, now: int) -> Step:
    if snapshot is None:
        return Step.GONE
    if snapshot.held:
        return Step.HELD
    due = next_due(snapshot)
    if due is None or due > now:
        return Step.NOT_DUE
    if snapshot.state == ACTIVE or (snapshot.state == WARNED and snapshot.warning_unsent):
        return Step.WARN  # nobody is erased for inactivity without the warning having gone
    return Step.ERASE
