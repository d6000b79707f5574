"""When an answer is due.

GDPR Art. 12(3): one month from receipt of a verified request, extendable by two further months
with reasons. Periods are counted as Regulation (EEC, Euratom) No 1182/71 Art. 3 counts them (the
EDPB applies it to GDPR's one-month period):

- The day the period runs from (verification) does not count, and a period ends with the expiry
  of the last hour of its last day (Art. 3(1), 3(2)(b) and (c)). "The end of the day" here is
  23:59:59.999999 UTC, the last instant of that UTC calendar day.
- Months are calendar months: the period ends on the day of the last month with the same date as
  the day it runs from (verified 10 March, any time: due at the end of 10 April); if that month has
  no such date, at the end of its last day (31 January + 1 month = the end of 28/29 February).
- A controller's shorter promise (`sla_days`) is a period in days, counted the same way: 14 days
  from 10 March ends at the end of 24 March. The earlier of it and the legal month wins.
- The latest extension (two more months) ends the same way, at the end of its day.

Not applied: Art. 3(4), which moves a period ending on a public holiday, a Saturday or a Sunday to
the end of the next working day. Holidays differ per member state (and region) and we keep no
calendar of them; ending on the calendar day is never later than the law allows, so erring early is
safe for the controller and never makes the subject wait longer (docs/decisions.md).

Not a legal period: a guardian's erasure request about a minor is due 72 hours after verification,
to the second. It is our urgency rule, counted in hours.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta, timezone

from rightsdesk.kernel import clock
from rightsdesk.kernel.errors import Conflict, InvalidInput
from rightsdesk.kernel.rights import Relationship, RequestType

DEFAULT_MONTHS = 1
MAX_EXTENSION_MONTHS = 2
# A guardian asking to erase a minor's data is treated as urgent (issue: routing).
GUARDIAN_ERASURE_HOURS = 72
# The last instant of a day: a period "ends with the expiry of the last hour" of its last day.
END_OF_DAY = time(23, 59, 59, 999999)


def add_calendar_months(moment: datetime, months: int) -> datetime:
    """The same date `months` later, clamped to the end of a shorter month; the time of day is kept
    (a calendar step, not a period: periods end at the end of the day, see months_from)."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def end_of_day(moment: datetime) -> datetime:
    """The last instant of the moment's UTC calendar day."""
    return datetime.combine(_utc(moment).date(), END_OF_DAY, tzinfo=timezone.utc)


def months_from(start: datetime, months: int) -> datetime:
    """When a period of `months` months that runs from `start` ends (Regulation 1182/71 Art. 3(2)(c))."""
    return end_of_day(add_calendar_months(_utc(start), months))


def days_from(start: datetime, days: int) -> datetime:
    """When a period of `days` days that runs from `start` ends (Regulation 1182/71 Art. 3(2)(b))."""
    return end_of_day(_utc(start) + timedelta(days=days))


def due_at(
    verified_at: datetime,
    *,
    request_type: RequestType | str,
    relationship: Relationship | str = Relationship.SELF,
    sla_days: int | None = None,
) -> datetime:
    """When an answer is owed: the end of the day one month after verification, or of the controller's
    shorter promise (`sla_days`); a guardian's erasure about a minor 72 hours after, exactly."""
    verified_at = _utc(verified_at)
    if Relationship(relationship) is Relationship.GUARDIAN and RequestType(request_type) is RequestType.ERASURE:
        return verified_at + timedelta(hours=GUARDIAN_ERASURE_HOURS)
    legal = months_from(verified_at, DEFAULT_MONTHS)
    if sla_days:
        return min(legal, days_from(verified_at, sla_days))
    return legal


def latest_extension(verified_at: datetime) -> datetime:
    """The furthest a due date may be pushed: the end of the day three months after verification
    (the first month plus two more), so any time on that last day is allowed."""
    return months_from(verified_at, DEFAULT_MONTHS + MAX_EXTENSION_MONTHS)


def extended_due(until: datetime, *, due: datetime, verified_at: datetime, now: datetime | None = None) -> datetime:
    """`until` as an extension's new due date (a time without a zone is UTC). Art. 12(3) extends a
    period that is still running: once the due date has passed the request is overdue, and no
    extension makes it timely again (Conflict `due_date_passed`). `until` must be later than the
    current `due` and no later than the law allows; otherwise InvalidInput on `extend_to`."""
    now = now or clock.now()
    if now > due:
        raise Conflict(
            f"the due date {clock.isoformat(due)} has passed: an extension (GDPR Art. 12(3)) must be "
            "made while the period runs; the request is overdue",
            code="due_date_passed",
            fields={"extend_to": "due_date_passed"},
        )
    until = until if until.tzinfo else until.replace(tzinfo=timezone.utc)
    if until <= due:
        raise InvalidInput("an extension must move the due date later", fields={"extend_to": "not_later"})
    cap = latest_extension(verified_at)
    if until > cap:
        raise InvalidInput(
            f"the law allows extending to {clock.isoformat(cap)} at the latest",
            fields={"extend_to": "beyond_legal_limit"},
        )
    return until


def end_of_date(text: object) -> object:
    """A bare date (`2027-02-28`) as the end of that UTC day, the way a period ends; anything else
    as it is, for the caller's own parsing. An extension "to 28 February" runs through that day."""
    if isinstance(text, str) and len(text) == 10 and text[4] == "-" and text[7] == "-":
        try:
            return datetime.combine(date.fromisoformat(text), END_OF_DAY, tzinfo=timezone.utc)
        except ValueError:
            return text
    return text


def _utc(moment: datetime) -> datetime:
    # Months are counted on the UTC calendar, as the deadline watch counts days: the same instant
    # written in another zone must not move the due date by a day, nor land in a DST gap.
    return moment.astimezone(timezone.utc)
