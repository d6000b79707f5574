"""The facts of one year for the annual self-assessment (rightsdesk_cli.annual.report), read without a scan.

- Requests: per controller and status, one GSI1 query on the year's part of the sort key
  (`<status>#<created_at>#<id>`, so `<status>#<year>-` covers exactly the year's submissions).
  A closed request's `closed_at` is when it closed (rightsdesk.store.lifecycle); a request closed
  before that was recorded falls back to `updated_at`, which only status changes and extensions
  set (a closed request is neither changed nor extended again).
- Breaches: the INCIDENTS partition of GSI1, by detection time.
- Policy versions: the POLICIES partition of GSI1 (a handful a year), by publication time.
- Account lifecycles: the lifecycle's audit events of the year, filed in GSI1 under LIFECYCLE#<year>
  (rightsdesk.lifecycle.erasures.lifecycle_event); an erasure is counted on its request's event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rightsdesk.kernel import retention
from rightsdesk.kernel.status import CLOSED, Status
from rightsdesk.notices import breaches as breach_counts
from rightsdesk.store import queries
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.notices import IncidentItem, PolicyVersionItem
from rightsdesk.store.items.requests import RequestItem
from rightsdesk_cli.annual.report import BreachFacts, PolicyFacts, RequestFacts

Progress = Callable[[int], None]  # called with how many requests were just read


def requests(year: int, *, progress: Progress | None = None) -> Iterator[RequestFacts]:
    closed = {status.value for status in CLOSED}
    for controller in queries.list_controllers():
        for status in Status:
            low, high = f"{status.value}#{year:04d}-", f"{status.value}#{year:04d}-~"
            found = RequestItem.by_controller.query(
                ControllerItem.key(controller.controller_id),
                RequestItem.gsi1sk.between(low, high),
                filter_condition=RequestItem.sk == RequestItem.SK,
            )
            for item in found:
                if not queries.is_visible(item):
                    continue
                if progress:
                    progress(1)
                yield RequestFacts(
                    request_type=item.request_type,
                    route=controller.delivery,
                    status=item.status,
                    created_at=item.created_at,
                    verified_at=item.verified_at,
                    due_at=item.due_at,
                    closed_at=(item.closed_at or item.updated_at) if item.status in closed else None,
                )


def breaches(year: int) -> Iterator[BreachFacts]:
    low, high = f"{year:04d}-", f"{year:04d}-~"
    for incident in IncidentItem.listing.query(IncidentItem.PARTITION, IncidentItem.gsi1sk.between(low, high)):
        if not retention.is_live(incident):
            continue
        counts = breach_counts.tally(incident, record=False)["total"]  # the notices, or their last snapshot
        sent, total = counts[breach_counts.SENT], sum(counts.values())
        yield BreachFacts(
            incident_id=incident.incident_id,
            detected_at=incident.detected_at,
            declared_at=incident.declared_at,
            authority_notified_at=incident.authority_notified_at,
            controllers_due_at=incident.controllers_due_at,
            authority_due_at=incident.authority_due_at,
            high_risk=bool(incident.high_risk),
            notices_sent=sent,
            notices_total=total,
            controllers_notified_at=incident.controllers_notified_at,
        )


def policies(year: int) -> Iterator[PolicyFacts]:
    for version in PolicyVersionItem.listing.query(PolicyVersionItem.PARTITION):
        if version.published_at.year == year:
            yield PolicyFacts(
                doc=version.doc,
                version=version.version,
                major=bool(version.major),
                published_at=version.published_at,
                effective_at=version.effective_at,
            )


def lifecycle(year: int) -> dict[str, int]:
    from rightsdesk.lifecycle.erasures import OPENED
    from rightsdesk.lifecycle.run import WARNED
    from rightsdesk.store.items.audit import AuditEvent

    counts: dict[str, int] = {}

    def count(name: str) -> None:
        counts[name] = counts.get(name, 0) + 1

    for event in AuditEvent.by_month.query(f"LIFECYCLE#{year}"):
        if event.action == WARNED:
            count("inactivity_warnings")
        elif event.action == "deletion_cancelled":
            count("deletions_called_off")
        elif event.action == "account_cancelled":
            count("cancellations")
        elif event.action == OPENED and event.pk.startswith(RequestItem.key("")):
            count(f"erasures_for_{event.cause}")
    return counts
