"""The annual self-assessment's figures, computed from plain facts: no I/O, so they can be checked
against hand-made data (rightsdesk_cli.annual.sources reads the facts; rightsdesk_cli.annual.html draws them).

Which year something belongs to (UTC): a request to the year it was submitted (and it counts only
once verified: nobody proved the address of the others, and they are deleted after 72 hours), a
breach to the year it was detected, a policy version to the year it was published.

Definitions an auditor can check by hand:
- answered: completed or rejected; on time: answered no later than its due date (as extended, which
  is possible only before it passes). Read by rightsdesk.kernel.deadline_state, the rule `requests list
  --overdue` and the deadline watch read too: an answer after the due date is late, whenever the
  request closed; an open request past its due date is overdue; a request cancelled after its due
  date had missed it (`withdrawn_after_due`), one cancelled before had no deadline left.
- days to complete: from verification to completion, for completed requests; the median is the
  middle value (the mean of the two middle ones for an even count), the 95th percentile is the
  nearest rank: the value at position ceil(0.95 * n) of the sorted days.
- delivery failures: requests whose delivery to their controller exhausted its retries and that are
  still `delivery_failed` (one redriven and delivered later counts as delivered).
- a breach is notified on time when its controllers' notices were all sent (or suppressed
  for an address that bounced before) and the authority's notification recorded no later than 72
  hours after detection (rightsdesk.kernel.deadline_state; a breach recorded before the notified time was
  kept falls back to its declaration time).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from rightsdesk.kernel import deadline_state
from rightsdesk.kernel.status import ANSWERED, Status

OUTCOMES = ("completed", "rejected", "cancelled", "open")
DAY = 86400.0


@dataclass(frozen=True)
class RequestFacts:
    request_type: str
    route: str  # the controller's delivery: webhook | email | pull | internal
    status: str
    created_at: datetime
    verified_at: datetime | None
    due_at: datetime | None
    closed_at: datetime | None  # when it reached its closed status; None while open


@dataclass(frozen=True)
class BreachFacts:
    incident_id: str
    detected_at: datetime
    declared_at: datetime
    authority_notified_at: datetime | None
    controllers_due_at: datetime
    authority_due_at: datetime
    high_risk: bool
    notices_sent: int
    notices_total: int
    controllers_notified_at: datetime | None = None  # when the last controller notice was sent or suppressed


@dataclass(frozen=True)
class PolicyFacts:
    doc: str
    version: str
    major: bool
    published_at: datetime
    effective_at: datetime


def year_bounds(year: int) -> tuple[datetime, datetime]:
    return datetime(year, 1, 1, tzinfo=timezone.utc), datetime(year + 1, 1, 1, tzinfo=timezone.utc)


def _in(year: int, moment: datetime) -> bool:
    start, end = year_bounds(year)
    return start <= moment < end


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: list[float], share: float) -> float | None:
    """Nearest rank: the smallest value with at least `share` of all values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


def _round(value: float | None, places: int = 1) -> float | None:
    return round(value, places) if value is not None else None


def outcome(status: str) -> str:
    if status in ANSWERED or status == Status.CANCELLED.value:
        return status
    return "open"


def _hours(start: datetime, end: datetime | None) -> float | None:
    return round((end - start).total_seconds() / 3600, 1) if end is not None else None


def request_figures(year: int, facts: Iterable[RequestFacts], now: datetime) -> dict:
    counted = [f for f in facts if f.verified_at is not None and _in(year, f.created_at)]
    answered = [f for f in counted if f.status in ANSWERED and f.closed_at is not None]
    standings = {id(f): deadline_state.request_standing(f.status, f.due_at, f.closed_at, now) for f in counted}
    on_time = [f for f in answered if standings[id(f)] is not None and standings[id(f)].on_time]
    withdrawn_late = [
        f
        for f in counted
        if f.status in deadline_state.WITHDRAWN and standings[id(f)] is not None and standings[id(f)].late
    ]
    days = [
        (f.closed_at - f.verified_at).total_seconds() / DAY
        for f in counted
        if f.status == Status.COMPLETED.value and f.closed_at is not None and f.verified_at is not None
    ]
    open_overdue = [f for f in counted if deadline_state.is_overdue(f.status, f.due_at, now)]
    by_type_outcome: dict[str, Counter] = {}
    for f in counted:
        by_type_outcome.setdefault(f.request_type, Counter())[outcome(f.status)] += 1
    failures = [f for f in counted if f.status == Status.DELIVERY_FAILED.value]
    return {
        "total": len(counted),
        "by_type": dict(sorted(Counter(f.request_type for f in counted).items())),
        "by_route": dict(sorted(Counter(f.route for f in counted).items())),
        "by_outcome": {name: sum(1 for f in counted if outcome(f.status) == name) for name in OUTCOMES},
        "by_type_and_outcome": {
            kind: {name: counts.get(name, 0) for name in OUTCOMES} for kind, counts in sorted(by_type_outcome.items())
        },
        "answered": len(answered),
        "answered_on_time": len(on_time),
        "answered_late": len(answered) - len(on_time),
        "withdrawn_after_due": len(withdrawn_late),
        "on_time_share": round(len(on_time) / len(answered), 3) if answered else None,
        "open_overdue": len(open_overdue),
        "days_to_complete": {
            "count": len(days),
            "median": _round(median(days)),
            "p95": _round(percentile(days, 0.95)),
        },
        "delivery_failures": {
            "total": len(failures),
            "by_route": dict(sorted(Counter(f.route for f in failures).items())),
        },
    }


def breach_figures(year: int, facts: Iterable[BreachFacts], now: datetime) -> dict:
    incidents = sorted((f for f in facts if _in(year, f.detected_at)), key=lambda f: f.detected_at)
    rows = []
    for f in incidents:
        authority = deadline_state.standing(f.authority_due_at, f.authority_notified_at, now)
        controllers = deadline_state.standing(f.controllers_due_at, f.controllers_notified_at or f.declared_at, now)
        rows.append(
            {
                "incident_id": f.incident_id,
                "detected_at": f.detected_at,
                "high_risk": f.high_risk,
                "hours_to_notices": _hours(f.detected_at, f.declared_at),
                "notices_on_time": controllers.on_time,
                "notices_state": controllers.state,
                "hours_to_authority": _hours(f.detected_at, f.authority_notified_at),
                "authority_on_time": authority.on_time,
                "authority_state": authority.state,
                "notices_sent": f.notices_sent,
                "notices_total": f.notices_total,
            }
        )
    return {
        "total": len(rows),
        "notified_on_time": sum(1 for r in rows if r["notices_on_time"] and r["authority_on_time"]),
        "incidents": rows,
    }


def policy_figures(year: int, facts: Iterable[PolicyFacts]) -> dict:
    versions = sorted((f for f in facts if _in(year, f.published_at)), key=lambda f: f.published_at)
    return {
        "total": len(versions),
        "major": sum(1 for f in versions if f.major),
        "versions": [
            {
                "doc": f.doc,
                "version": f.version,
                "major": f.major,
                "published_at": f.published_at,
                "effective_at": f.effective_at,
            }
            for f in versions
        ],
    }


def figures(
    year: int,
    requests: Iterable[RequestFacts],
    breaches: Iterable[BreachFacts],
    policies: Iterable[PolicyFacts],
    *,
    now: datetime,
    lifecycle: dict[str, int] | None = None,
) -> dict:
    """Everything the report shows; datetimes stay datetimes (the caller formats them)."""
    start, end = year_bounds(year)
    return {
        "year": year,
        "period": {"from": start, "until": end},
        "generated_at": now,
        "requests": request_figures(year, requests, now),
        "breaches": breach_figures(year, breaches, now),
        "policies": policy_figures(year, policies),
        # account lifecycles (rightsdesk.lifecycle): warnings, erasures by cause, cancellations
        "lifecycle": lifecycle_figures(lifecycle or {}),
    }


LIFECYCLE_FIGURES = (
    "inactivity_warnings",
    "deletions_called_off",
    "cancellations",
    "erasures_for_inactivity",
    "erasures_for_cancellation",
    "erasures_for_consent_expiry",
)


def lifecycle_figures(counts: dict[str, int]) -> dict:
    figures = {name: int(counts.get(name, 0)) for name in LIFECYCLE_FIGURES}
    figures["erasures"] = sum(figures[name] for name in LIFECYCLE_FIGURES if name.startswith("erasures_for_"))
    return figures
