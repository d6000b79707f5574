"""Whether a deadline was kept: the one rule behind every figure that says "on time" or "overdue".

A deadline is met only by its action happening at or before it. Whatever happens later does not
make it on time: a late action meets it late, by the time between the deadline and the action,
and until the action happens a passed deadline is missed. So a deadline reads

- `open`        the action has not happened and the deadline has not passed;
- `met_on_time` the action happened at or before the deadline;
- `met_late`    the action happened after the deadline (`late_by` says by how much);
- `missed`      the deadline passed and the action has not happened (`late_by`: overdue for).

Readers: the breach deadlines (rightsdesk.notices.breaches: controllers, authority, subjects), a
request's answer (`request_standing`: `requests list --overdue`, the deadline watch, the annual
report's on-time share). An extension moves a request's due date only while it has not passed
(rightsdesk.kernel.deadlines.extended_due), so the stored due date is the deadline to read against.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from rightsdesk.kernel.status import ANSWERED, WITHDRAWN

OPEN, MET_ON_TIME, MET_LATE, MISSED = "open", "met_on_time", "met_late", "missed"
STATES = (OPEN, MET_ON_TIME, MET_LATE, MISSED)
# A request's deadline is met by its answer (status.ANSWERED). Closed without one (status.WITHDRAWN),
# before its due date that ends the deadline; after it, the deadline had been missed already and stays missed.


@dataclass(frozen=True)
class Standing:
    state: str
    due_at: datetime
    met_at: datetime | None
    late_by: timedelta | None  # met_late: how late the action was; missed: how long overdue so far

    @property
    def on_time(self) -> bool:
        return self.state == MET_ON_TIME

    @property
    def late(self) -> bool:
        """Met late or missed: in no figure does it count as kept."""
        return self.state in (MET_LATE, MISSED)

    def label(self) -> str:
        """How a person reads it: `open`, `met on time`, `met late by 1d 2h 00m`, `missed (overdue by 3h 10m)`."""
        if self.state == MET_LATE:
            return f"met late by {duration(self.late_by)}"
        if self.state == MISSED:
            return f"missed (overdue by {duration(self.late_by)})"
        return self.state.replace("_", " ")


def standing(due_at: datetime, met_at: datetime | None, now: datetime) -> Standing:
    """The deadline `due_at` read at `now`, its action having happened at `met_at` (None: not yet).
    An action recorded later than `now` has not happened yet as far as `now` is concerned."""
    if met_at is not None and met_at <= now:
        if met_at <= due_at:
            return Standing(MET_ON_TIME, due_at, met_at, None)
        return Standing(MET_LATE, due_at, met_at, met_at - due_at)
    if now > due_at:
        return Standing(MISSED, due_at, None, now - due_at)
    return Standing(OPEN, due_at, None, None)


def request_standing(
    status: str, due_at: datetime | None, closed_at: datetime | None, now: datetime
) -> Standing | None:
    """A request's answer against its due date; None when no deadline runs (not verified yet, or
    withdrawn before it was due). `closed_at` is when it reached its closed status."""
    if due_at is None:
        return None
    if status in ANSWERED:
        return standing(due_at, closed_at or now, now)
    if status in WITHDRAWN:
        ended = closed_at or now
        if ended <= due_at:
            return None
        return Standing(MISSED, due_at, None, ended - due_at)
    return standing(due_at, None, now)


def is_overdue(status: str, due_at: datetime | None, now: datetime) -> bool:
    """An open request past its due date: what `requests list --overdue`, the deadline watch and
    the annual report's `open_overdue` count."""
    if status in ANSWERED or status in WITHDRAWN:
        return False
    found = request_standing(status, due_at, None, now)
    return found is not None and found.state == MISSED


def duration(span: timedelta | None) -> str:
    """`2d 3h 05m`, `3h 05m`, `0h 45m`: whole minutes, rounded down."""
    minutes = int((span or timedelta()).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    return (f"{days}d " if days else "") + f"{hours}h {minutes:02d}m"
