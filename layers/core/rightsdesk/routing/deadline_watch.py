"""The hourly deadline watch: remind whoever owes an answer, and re-route stuck requests.

Reminders, by UTC calendar days between the due date and now (docs/decisions.md "Deadline reminders"):

- the controller (`dsr.request.overdue` by webhook, else `request_notice` by email): once three
  days before the due date (`due_in_3_days`), once on it (`due_today`), and while the request is
  overdue once in every OVERDUE_EVERY_DAYS days after it (`overdue_1` on days 1-3 after the due
  date, `overdue_2` on days 4-6, ...), for as long as it stays open;
- the operator (OperatorEmail): once per request when it is OPERATOR_AFTER_DAYS days overdue, in
  one digest mail per run listing ids, types and dates (no personal data);
- the subject, where rightsdesk still holds their address (the operator's own requests, delivery
  `internal`): once, when their request is overdue, with their right to complain to the
  supervisory authority (GDPR Art. 77).

Overdue means what rightsdesk.kernel.deadline_state says; the count of overdue open requests is the
OverdueRequests metric. Each reminder is claimed with a conditional write on the request
(`notices_sent`) plus an audit event before it is queued, so a second run in the same period sends
nothing twice; if queueing fails the claim is released for the next run. An extension (before the
due date: afterwards it is refused) clears the claims so the reminders run again for the new date.
Rate bounds: at most CONTROLLER_REMINDERS_PER_RUN reminders per controller and run (the rest are
sent by the next hourly run, well within their period), one operator digest per run, one mail
per subject and request.

A request still `verified` 15 minutes after verification was not routed (the enqueue at
verification failed): it is queued for routing again; routing is idempotent.

Requests are found per controller through GSI1 (controller + status), never by a table scan.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from pynamodb.exceptions import TransactWriteError, UpdateError

from rightsdesk.kernel import clock, deadline_state
from rightsdesk.kernel.delivery_mode import DeliveryMode
from rightsdesk.kernel.errors import NotFound
from rightsdesk.kernel.status import WATCHED, Status, in_order
from rightsdesk.platform.config import settings
from rightsdesk.store import audit, outbox, queries
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.requests import RequestItem
from rightsdesk.store.items.table import transaction

log = logging.getLogger(__name__)

NOTICE_DAYS_BEFORE = 3
OVERDUE_EVERY_DAYS = 3
OPERATOR_AFTER_DAYS = 7
CONTROLLER_REMINDERS_PER_RUN = 50
OPERATOR_DIGEST_MAX = 200  # requests listed in one digest; the rest go in the next run's
REROUTE_AFTER = timedelta(minutes=15)
DUE_IN_3_DAYS, DUE_TODAY, OVERDUE = "due_in_3_days", "due_today", "overdue"
OPERATOR_NOTICE = "operator_week_overdue"
SUBJECT_NOTICE = "subject_overdue"
INTERNAL = DeliveryMode.INTERNAL


def days_left(due_at: datetime, now: datetime) -> int:
    """UTC calendar days from now to the due date: 0 on it, negative once it has passed."""
    return (due_at.astimezone(timezone.utc).date() - now.astimezone(timezone.utc).date()).days


def notice_for(due_at: datetime, now: datetime) -> str | None:
    """Which controller reminder is owed in the current period, if any."""
    if deadline_state.standing(due_at, None, now).state == deadline_state.MISSED:
        overdue_days = max(1, -days_left(due_at, now))  # passed today (a timed due date): day 1
        return f"{OVERDUE}_{(overdue_days - 1) // OVERDUE_EVERY_DAYS + 1}"
    left = days_left(due_at, now)
    if left <= 0:
        return DUE_TODAY
    if left <= NOTICE_DAYS_BEFORE:
        return DUE_IN_3_DAYS
    return None


def extension_actions(until: datetime) -> list:
    """The writes of an extension: the new due date, and the reminders start again for it."""
    return [RequestItem.due_at.set(until), RequestItem.notices_sent.remove()]


@dataclass
class WatchReport:
    controllers: int = 0
    requests: int = 0
    notices: dict[str, int] = field(default_factory=lambda: {DUE_IN_3_DAYS: 0, DUE_TODAY: 0, OVERDUE: 0})
    rerouted: int = 0
    overdue: int = 0  # open requests past their due date: the OverdueRequests metric and alarm
    deferred: int = 0  # controller reminders left for the next run by the per-controller bound
    operator: int = 0  # requests in this run's operator digest
    subjects: int = 0  # subjects told that their request is overdue
    unaddressed: int = 0  # operator reminders owed while OperatorEmail is empty

    def as_dict(self) -> dict:
        return {
            "controllers": self.controllers,
            "requests": self.requests,
            "notices": self.notices,
            "rerouted": self.rerouted,
            "overdue": self.overdue,
            "deferred": self.deferred,
            "operator": self.operator,
            "subjects": self.subjects,
            "unaddressed": self.unaddressed,
        }


def run(now: datetime | None = None) -> WatchReport:
    now = now or clock.now()
    report = WatchReport()
    digest: list[RequestItem] = []
    for controller in queries.list_controllers():
        report.controllers += 1
        budget = [CONTROLLER_REMINDERS_PER_RUN]
        for status in in_order(WATCHED):
            for request in queries.controller_requests(controller.controller_id, status):
                report.requests += 1
                _watch(request, controller, now, report, budget, digest)
    if digest:
        _send_digest(digest, now)
        report.operator = len(digest)
    if report.unaddressed:
        log.warning(
            "overdue reminders for the operator owed but OperatorEmail is empty", extra={"owed": report.unaddressed}
        )
    return report


def _watch(
    request: RequestItem,
    controller: ControllerItem,
    now: datetime,
    report: WatchReport,
    budget: list[int],
    digest: list[RequestItem],
) -> None:
    overdue = deadline_state.is_overdue(request.status, request.due_at, now)
    report.overdue += overdue
    if request.status == Status.VERIFIED.value:
        if request.verified_at is not None and request.verified_at <= now - REROUTE_AFTER:
            outbox.enqueue_delivery(request_id=request.request_id, event="route")
            report.rerouted += 1
        return  # the controller has not got it yet; its notices start once it is forwarded
    if request.due_at is None:
        return
    sent = request.notices_sent or set()
    notice = notice_for(request.due_at, now)
    if notice is not None and notice not in sent:
        if budget[0] <= 0:
            report.deferred += 1
        elif _claim(request, notice, now):
            budget[0] -= 1
            _queue_or_release(
                request,
                notice,
                lambda: outbox.enqueue_delivery(request_id=request.request_id, event="overdue", notice=notice),
            )
            report.notices[notice.partition("_")[0] if notice.startswith(OVERDUE) else notice] += 1
    if not overdue:
        return
    if controller.delivery == INTERNAL and SUBJECT_NOTICE not in sent and _tell_subject(request, now):
        report.subjects += 1
    if -days_left(request.due_at, now) >= OPERATOR_AFTER_DAYS and OPERATOR_NOTICE not in sent:
        if not settings().operator_email:
            report.unaddressed += 1
        elif len(digest) < OPERATOR_DIGEST_MAX and _claim(request, OPERATOR_NOTICE, now):
            digest.append(request)


def _queue_or_release(request: RequestItem, notice: str, queue) -> None:
    try:
        queue()
    except Exception:
        _release(request, notice)
        raise


def _tell_subject(request: RequestItem, now: datetime) -> bool:
    """The subject of an overdue request about the operator's own data, while we hold their address.
    The notifier makes the mail (the supervisory authority, Art. 77) when it sends."""
    if not queries.personal_fields(request)["email"] or not _claim(request, SUBJECT_NOTICE, now):
        return False
    _queue_or_release(
        request,
        SUBJECT_NOTICE,
        lambda: outbox.enqueue_mail(
            "own_request_overdue", request_id=request.request_id, mail_id=f"own-{request.request_id}-overdue"
        ),
    )
    return True


def _send_digest(requests: list[RequestItem], now: datetime) -> None:
    """One mail to the operator naming the requests (ids only: the notifier reads their facts)."""
    ids = {f"request_{n}": r.request_id for n, r in enumerate(requests)}
    try:
        outbox.enqueue_mail(
            "requests_overdue_digest",
            days=OPERATOR_AFTER_DAYS,
            mail_id=f"overdue-digest-{int(now.timestamp()) // 3600}-{requests[0].request_id}",
            **ids,
        )
    except Exception:
        for request in requests:
            _release(request, OPERATOR_NOTICE)
        raise


def digest_rows(ids: dict) -> list[dict]:
    """The digest's requests, read when the mail is sent; those gone meanwhile are left out."""
    rows = []
    for name in sorted((k for k in ids if k.startswith("request_")), key=lambda k: int(k.partition("_")[2])):
        try:
            r = queries.load_request(str(ids[name]))
        except NotFound:
            continue
        rows.append(
            {
                "request_id": r.request_id,
                "controller_id": r.controller_id,
                "request_type": r.request_type,
                "status": r.status,
                "due_at": clock.isoformat(r.due_at),
            }
        )
    return rows


def _claim(request: RequestItem, notice: str, now: datetime) -> bool:
    """Record the notice as sent, with its audit event; False if another run recorded it first."""
    event = audit.event(request.pk, action="deadline_notice", actor="deadline_watch", at=now, cause=notice)
    try:
        with transaction() as tx:
            tx.update(
                request,
                actions=[RequestItem.notices_sent.add({notice})],
                # the due date read is the one the notice is about: an extension meanwhile wins
                condition=RequestItem.pk.exists()
                & ~RequestItem.notices_sent.contains(notice)
                & (RequestItem.due_at == request.due_at),
            )
            tx.save(event, condition=type(event).sk.does_not_exist())
    except TransactWriteError:
        return False
    return True


def _release(request: RequestItem, notice: str) -> None:
    try:
        request.update(actions=[RequestItem.notices_sent.delete({notice})])
    except UpdateError as error:
        log.error(
            "could not release a deadline notice claim",
            extra={"error_type": type(error).__name__, "request_id": request.request_id},
        )
