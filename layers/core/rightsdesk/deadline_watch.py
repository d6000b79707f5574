"""The hourly deadline watch: remind controllers of due dates, and re-route stuck requests.

- `dsr.request.overdue` goes to a request's controller once on the (UTC) calendar day three days
  before the due date and once on the due date (or the first run after it). Each notice is claimed
  with a conditional write on the request (`notices_sent`) plus an audit event, so overlapping runs
  send it once; if queueing fails the claim is released for the next run.
- A request still `verified` 15 minutes after verification was not routed (the enqueue at
  verification failed): it is queued for routing again; routing is idempotent.

Requests are found per controller through GSI1 (controller + status), never by a table scan.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from pynamodb.exceptions import TransactWriteError, UpdateError

from rightsdesk import audit, clock, deadlines, outbox, queries, registry
from rightsdesk.models import RequestItem, transaction
from rightsdesk.status import Status

log = logging.getLogger(__name__)

NOTICE_DAYS_BEFORE = 3
REROUTE_AFTER = timedelta(minutes=15)
# Open requests with a due date that the controller has (or is about to have).
WATCHED = (
    Status.VERIFIED,
    Status.FORWARDED,
    Status.DELIVERED,
    Status.DELIVERY_FAILED,
    Status.ACKNOWLEDGED,
    Status.IN_PROGRESS,
)


def notice_for(due_at: datetime, now: datetime) -> str | None:
    """Which deadline notice is owed now, if any, by calendar days left (UTC)."""
    days_left = (due_at.astimezone(timezone.utc).date() - now.astimezone(timezone.utc).date()).days
    if days_left <= 0:
        return "due_today"
    if days_left <= NOTICE_DAYS_BEFORE:
        return "due_in_3_days"
    return None


@dataclass
class WatchReport:
    controllers: int = 0
    requests: int = 0
    notices: dict[str, int] = field(default_factory=lambda: {"due_in_3_days": 0, "due_today": 0})
    rerouted: int = 0
    overdue: int = 0  # open requests past their due date: the OverdueRequests metric and alarm (issue 7)

    def as_dict(self) -> dict:
        return {"controllers": self.controllers, "requests": self.requests, "notices": self.notices,
                "rerouted": self.rerouted, "overdue": self.overdue}


def run(now: datetime | None = None) -> WatchReport:
    now = now or clock.now()
    report = WatchReport()
    for controller in registry.list_controllers():
        report.controllers += 1
        for status in WATCHED:
            for request in queries.controller_requests(controller.controller_id, status):
                report.requests += 1
                _watch(request, now, report)
    return report


def _watch(request: RequestItem, now: datetime, report: WatchReport) -> None:
    if deadlines.is_overdue(request.due_at, now):
        report.overdue += 1
    if request.status == Status.VERIFIED.value:
        if request.verified_at is not None and request.verified_at <= now - REROUTE_AFTER:
            outbox.enqueue_delivery(request_id=request.request_id, event="route")
            report.rerouted += 1
        return  # the controller has not got it yet; its notices start once it is forwarded
    if request.due_at is None:
        return
    notice = notice_for(request.due_at, now)
    if notice is None or notice in (request.notices_sent or set()):
        return
    if not _claim(request, notice, now):
        return
    try:
        outbox.enqueue_delivery(request_id=request.request_id, event="overdue", notice=notice)
    except Exception:
        _release(request, notice)
        raise
    report.notices[notice] += 1


def _claim(request: RequestItem, notice: str, now: datetime) -> bool:
    """Record the notice as sent, with its audit event; False if another run recorded it first."""
    event = audit.event(request.pk, action="deadline_notice", actor="deadline_watch", at=now, cause=notice)
    try:
        with transaction() as tx:
            tx.update(
                request,
                actions=[RequestItem.notices_sent.add({notice})],
                condition=RequestItem.pk.exists() & ~RequestItem.notices_sent.contains(notice),
            )
            tx.save(event, condition=type(event).sk.does_not_exist())
    except TransactWriteError:
        return False
    return True


def _release(request: RequestItem, notice: str) -> None:
    try:
        request.update(actions=[RequestItem.notices_sent.delete({notice})])
    except UpdateError as error:
        log.error("could not release a deadline notice claim", extra={"error_type": type(error).__name__,
                                                                       "request_id": request.request_id})
