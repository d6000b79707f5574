"""Moments typed on the command line: ISO 8601 in UTC, `now`, or a date meaning the end of that day."""

from __future__ import annotations

from datetime import datetime, timezone

from rightsdesk.kernel import clock, deadlines
from rightsdesk.kernel.errors import InvalidInput


def parse_moment(text: str, field: str) -> datetime:
    """ISO 8601 (`2026-11-23T10:00:00Z`, `2026-11-23 10:00`), UTC when no zone is given; or `now`."""
    if text.strip().lower() == "now":
        return clock.now()
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{field}: use ISO 8601, e.g. 2026-11-23T10:00:00Z", fields={field: "invalid_format"}
        ) from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def parse_period_end(text: str, field: str) -> datetime:
    """Where a period ends: a date alone is the end of that UTC day (as deadlines count), else parse_moment."""
    end = deadlines.end_of_date(text.strip())
    return end if isinstance(end, datetime) else parse_moment(text, field)
