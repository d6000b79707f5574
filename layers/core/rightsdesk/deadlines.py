"""When an answer is due.

GDPR Art. 12(3): one month from receipt of a verified request, extendable by two further months
with reasons. Months are calendar months: 31 January + 1 month = 28/29 February.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone

from rightsdesk.rights import Relationship, RequestType

DEFAULT_MONTHS = 1
MAX_EXTENSION_MONTHS = 2
# A guardian asking to erase a minor's data is treated as urgent (issue: routing).
GUARDIAN_ERASURE_HOURS = 72


def add_calendar_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def due_at(
    verified_at: datetime,
    *,
    request_type: RequestType | str,
    relationship: Relationship | str = Relationship.SELF,
    sla_days: int | None = None,
) -> datetime:
    """The date an answer is owed. A controller's shorter promise (`sla_days`) wins over the law's month."""
    verified_at = _utc(verified_at)
    if Relationship(relationship) is Relationship.GUARDIAN and RequestType(request_type) is RequestType.ERASURE:
        return verified_at + timedelta(hours=GUARDIAN_ERASURE_HOURS)
    legal = add_calendar_months(verified_at, DEFAULT_MONTHS)
    if sla_days:
        return min(legal, verified_at + timedelta(days=sla_days))
    return legal


def latest_extension(verified_at: datetime) -> datetime:
    """The furthest a due date may be pushed: the first month plus two more."""
    return add_calendar_months(_utc(verified_at), DEFAULT_MONTHS + MAX_EXTENSION_MONTHS)


def _utc(moment: datetime) -> datetime:
    # Months are counted on the UTC calendar, as the deadline watch counts days: the same instant
    # written in another zone must not move the due date by a day, nor land in a DST gap.
    return moment.astimezone(timezone.utc)


def is_overdue(due_at: datetime | None, now: datetime) -> bool:
    """Past its due date (callers ask only about open requests: a closed one was answered)."""
    return due_at is not None and due_at < now
