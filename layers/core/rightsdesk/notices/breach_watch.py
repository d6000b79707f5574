"""The breach part of the hourly deadline watch: warn the operators before the 72 hours run out.

An incident needs attention while any notice is unsent (pending or failed) or the supervisory
authority's notification is not recorded. Then the operators (template parameter OperatorEmail)
get one warning 12 hours before the deadline (or at the first run after that, however late) and
one more once the deadline has passed. Each warning is claimed on the incident with its audit
event, so overlapping runs send it once; if queueing fails the claim is released for the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rightsdesk.kernel import clock
from rightsdesk.notices import breaches
from rightsdesk.platform.config import settings
from rightsdesk.store import outbox
from rightsdesk.store.items.notices import IncidentItem

log = logging.getLogger(__name__)

WARN_BEFORE = timedelta(hours=12)
DUE_SOON = "due_in_12h"
OVERDUE = "overdue"


@dataclass
class WatchReport:
    incidents: int = 0
    open: int = 0  # incidents with unsent notices or no authority record
    warnings: dict[str, int] = field(default_factory=lambda: {DUE_SOON: 0, OVERDUE: 0})
    unaddressed: int = 0  # warnings owed while OperatorEmail is empty
    at_risk: int = 0  # open incidents within WARN_BEFORE of their deadline or past it (its alarm)

    def as_dict(self) -> dict:
        return {
            "incidents": self.incidents,
            "open": self.open,
            "warnings": self.warnings,
            "unaddressed": self.unaddressed,
            "at_risk": self.at_risk,
        }


def warning_for(due_at: datetime, now: datetime) -> str | None:
    if now >= due_at:
        return OVERDUE
    if now >= due_at - WARN_BEFORE:
        return DUE_SOON
    return None


def open_work(incident: IncidentItem) -> dict:
    counts = breaches.tally(incident)["total"]
    return {
        "unsent": counts[breaches.PENDING],
        "failed": counts[breaches.FAILED],
        "authority_recorded": incident.authority_notified_at is not None,
    }


def run(now: datetime | None = None) -> WatchReport:
    now = now or clock.now()
    report = WatchReport()
    for incident in breaches.recent(now):
        report.incidents += 1
        work = open_work(incident)
        if not (work["unsent"] or work["failed"] or not work["authority_recorded"]):
            continue
        report.open += 1
        due = min(incident.controllers_due_at, incident.authority_due_at)
        warning = warning_for(due, now)
        report.at_risk += warning is not None
        if warning is None or warning in (incident.warnings_sent or set()):
            continue
        if not settings().operator_email:
            report.unaddressed += 1
            continue
        if not breaches.claim_warning(incident, warning, now):
            continue
        try:
            _send(incident, warning, due, now, work)
        except Exception:
            breaches.release_warning(incident, warning)
            raise
        report.warnings[warning] += 1
    if report.unaddressed:
        log.warning("breach deadline warnings owed but OperatorEmail is empty", extra={"owed": report.unaddressed})
    return report


def _send(incident: IncidentItem, warning: str, due: datetime, now: datetime, work: dict) -> None:
    # The notifier reads the incident and counts the hours when it sends (warning_context).
    outbox.enqueue_mail(
        "breach_deadline_warning",
        incident_id=incident.incident_id,
        warning=warning,
        mail_id=f"breach-warning-{incident.incident_id}-{warning}",
    )


def warning_context(incident_id: str, warning: str, now: datetime | None = None) -> dict | None:
    """What the operators' warning says, from the incident as it is when the mail is sent; None if
    the incident is gone."""
    from rightsdesk.kernel.errors import NotFound

    try:
        incident = breaches.load(incident_id)
    except NotFound:
        return None
    now = now or clock.now()
    due = min(incident.controllers_due_at, incident.authority_due_at)
    hours_left = max(0, -int((now - due).total_seconds() // 3600))  # whole hours, rounded up
    return {
        "incident_id": incident.incident_id,
        "due_at": clock.isoformat(due),
        "hours_left": hours_left,
        "overdue": warning == OVERDUE,
        **open_work(incident),
    }
