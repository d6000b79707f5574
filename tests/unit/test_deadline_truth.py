"""Deadlines tell the truth: one rule (rightsdesk.kernel.deadline_state) read by the breach deadlines, the
request figures (`requests list --overdue`, the deadline watch, the annual report) and the
extension routes; and the reminders that keep going while a request is overdue."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from rightsdesk.kernel import clock, deadline_state
from rightsdesk.kernel.errors import Conflict, InvalidInput
from rightsdesk.kernel.status import Status
from rightsdesk.notices import breaches
from rightsdesk.own_data import own_requests
from rightsdesk.platform import hashing
from rightsdesk.routing import controller_lookup, controller_requests, deadline_watch
from rightsdesk.routing.controller_requests import StatusReport
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.notices import IncidentItem
from rightsdesk.store.items.requests import RequestItem
from rightsdesk_cli import requests as requests_cli
from rightsdesk_cli.annual import report as annual_report
from rightsdesk_cli.annual import sources as annual_sources
from tests.support.aws import fast_pynamodb_sessions, made
from tests.support.notices_world import World, aws_environment

UTC = timezone.utc
T = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


# ------------------------------------------------------------------ the rule itself


# (action relative to the deadline or None, now relative to the deadline) -> state
RELATIONS = [
    (None, -SECOND, deadline_state.OPEN),
    (None, timedelta(0), deadline_state.OPEN),  # the deadline's own instant still counts
    (None, SECOND, deadline_state.MISSED),
    (-timedelta(hours=5), SECOND, deadline_state.MET_ON_TIME),
    (timedelta(0), timedelta(0), deadline_state.MET_ON_TIME),
    (timedelta(0), timedelta(days=30), deadline_state.MET_ON_TIME),
    (SECOND, SECOND, deadline_state.MET_LATE),
    (timedelta(days=8), timedelta(days=9), deadline_state.MET_LATE),
    (timedelta(days=8), timedelta(days=7), deadline_state.MISSED),  # recorded for later: not yet happened
]


@pytest.mark.parametrize("action, now, state", RELATIONS)
def test_a_deadline_is_met_only_by_an_action_at_or_before_it(action, now, state):
    found = deadline_state.standing(T, T + action if action is not None else None, T + now)
    assert found.state == state
    assert found.on_time is (state == deadline_state.MET_ON_TIME)
    if state == deadline_state.MET_LATE:
        assert found.late_by == action and found.label() == f"met late by {deadline_state.duration(action)}"
    if state == deadline_state.MISSED:
        assert found.late_by == now and found.label().startswith("missed (overdue by")


@given(st.integers(-(10**7), 10**7), st.one_of(st.none(), st.integers(-(10**7), 10**7)), st.integers(-(10**7), 10**7))
def test_late_is_late_whatever_happens_afterwards(due_offset, met_offset, now_offset):
    due, now = T + timedelta(seconds=due_offset), T + timedelta(seconds=now_offset)
    met = T + timedelta(seconds=met_offset) if met_offset is not None else None
    found = deadline_state.standing(due, met, now)
    later = deadline_state.standing(due, met, now + timedelta(days=400))
    assert found.on_time == (met is not None and met <= due and met <= now)
    if found.late:  # once late, never on time again
        assert later.late
    if later.state == deadline_state.MET_ON_TIME:
        assert met is not None and met <= due


ANSWERED_OR_NOT = [(s.value, closed) for s in Status for closed in (None, -SECOND, SECOND)]


@pytest.mark.parametrize("status, closed", ANSWERED_OR_NOT)
def test_a_request_reads_against_its_answer_and_never_counts_late_and_on_time_at_once(status, closed):
    now = T + timedelta(days=3)
    closed_at = T + closed if closed is not None else None
    found = deadline_state.request_standing(status, T, closed_at, now)
    if status in deadline_state.ANSWERED:
        assert found.state == (
            deadline_state.MET_ON_TIME if closed is not None and closed <= timedelta(0) else deadline_state.MET_LATE
        )
    elif status in deadline_state.WITHDRAWN:
        assert found is None if closed is not None and closed <= timedelta(0) else found.state == deadline_state.MISSED
    else:
        assert found.state == deadline_state.MISSED
    assert deadline_state.is_overdue(status, T, now) is (
        status not in deadline_state.ANSWERED | deadline_state.WITHDRAWN
    )


# ------------------------------------------------------------------ breach deadlines, every kind


def _incident(now_offset_hours: float, **fields) -> tuple[IncidentItem, datetime]:
    detected = T
    values = dict(
        incident_id="inc_1",
        detected_at=detected,
        declared_at=detected + timedelta(hours=1),
        declared_by="operator",
        summary="s",
        categories=["email"],
        contact="c",
        controller_ids=["ctl_a"],
        controllers_due_at=detected + breaches.DEADLINE,
        authority_due_at=detected + breaches.DEADLINE,
        notify_subjects=True,
        high_risk=True,
    )
    values.update(fields)
    return IncidentItem(IncidentItem.key("inc_1"), IncidentItem.SK, **values), detected + timedelta(
        hours=now_offset_hours
    )


NOTIFIED = {"pending": 0, "sent": 2, "failed": 0, "suppressed": 0}
PENDING = {"pending": 1, "sent": 1, "failed": 0, "suppressed": 0}
KIND_FIELD = {
    "controllers": "controllers_notified_at",
    "authority": "authority_notified_at",
    "subjects": "subjects_notified_at",
}


@pytest.mark.parametrize("deadline", breaches.DEADLINE_NAMES)
@pytest.mark.parametrize(
    "acted_after_hours, now_hours, state",
    [
        (None, 10, deadline_state.OPEN),
        (None, 80, deadline_state.MISSED),
        (71, 80, deadline_state.MET_ON_TIME),
        (72, 72, deadline_state.MET_ON_TIME),
        (96, 200, deadline_state.MET_LATE),  # four days after detection: late, never "done"
    ],
)
def test_every_breach_deadline_reads_its_state(deadline, acted_after_hours, now_hours, state):
    fields = {}
    if acted_after_hours is not None:
        fields[KIND_FIELD[deadline]] = T + timedelta(hours=acted_after_hours)
    incident, now = _incident(now_hours, **fields)
    counts = {
        "controller": NOTIFIED if acted_after_hours is not None else PENDING,
        "subject": NOTIFIED if acted_after_hours is not None else PENDING,
    }
    rows = {row["deadline"]: row for row in breaches.deadlines(incident, counts, now)}
    assert rows[deadline]["state"] == state
    if state == deadline_state.MET_LATE:
        assert rows[deadline]["late_by_seconds"] == 24 * 3600 and rows[deadline]["label"] == "met late by 1d 0h 00m"


def test_the_subjects_deadline_exists_only_when_subjects_are_told():
    incident, now = _incident(10, notify_subjects=False, high_risk=False)
    assert [row["deadline"] for row in breaches.deadlines(incident, {"controller": PENDING}, now)] == [
        "controllers",
        "authority",
    ]


# ------------------------------------------------------------------ against the table


@pytest.fixture(scope="module")
def world():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        aws_environment(patch)
        fast_pynamodb_sessions(patch)
        patch.setenv("SUPERVISORY_AUTHORITY_NAME", "Informacijski pooblaščenec")
        patch.setenv("SUPERVISORY_AUTHORITY_URL", "https://www.ip-rs.si")
        from rightsdesk.platform import config

        config.reload()
        yield World(patch, prefix="rightsdesk-deadlines")
        config.reload()


def _controller(world: World, delivery: str = "email") -> ControllerItem:
    controller_id = hashing.new_id("ctl")[:20]
    world.controller(controller_id, delivery=delivery)
    return controller_lookup.get_controller(controller_id)


def _request(
    controller: ControllerItem,
    *,
    status: str,
    due_at: datetime | None,
    closed_at: datetime | None = None,
    created_at: datetime | None = None,
    email: str | None = "ana@example.org",
    locale: str = "en",
    request_type: str = "access",
) -> RequestItem:
    request_id = hashing.new_id("dsr")
    created = created_at or clock.now() - timedelta(days=40)
    verified = None if status == Status.IDENTITY_UNVERIFIED.value else created + timedelta(minutes=5)
    item = RequestItem(
        RequestItem.key(request_id),
        RequestItem.SK,
        request_id=request_id,
        controller_id=controller.controller_id,
        site=controller.site_key,
        request_type=request_type,
        status=status,
        locale=locale,
        email=email,
        subject_hash=hashing.email_hash(email or "x@example.org"),
        created_at=created,
        verified_at=verified,
        due_at=due_at if verified else None,
        closed_at=closed_at,
        updated_at=closed_at or created,
        gsi1pk=ControllerItem.key(controller.controller_id),
        gsi1sk=f"{status}#{clock.isoformat(created)}#{request_id}",
    )
    item.save()
    return item


OPEN_STATUSES = [s.value for s in deadline_watch.WATCHED]
CLOSED_STATUSES = [Status.COMPLETED.value, Status.REJECTED.value, Status.CANCELLED.value]
HOUR = 3600


def _figures(now: datetime, controller_id: str) -> tuple[set[str], int, dict]:
    """`requests list --overdue` (this controller's), the watch's overdue count and the annual report."""
    listed = {item.request_id for item in requests_cli._filtered(controller_id, None, None, True)}
    watched = deadline_watch.run(now).overdue
    return listed, watched, annual_report.request_figures(now.year, annual_sources.requests(now.year), now)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(OPEN_STATUSES + CLOSED_STATUSES),
            st.integers(-60 * 24, 60 * 24),  # due, in hours from now
            st.integers(-60 * 24, 0),
        ),  # closed, in hours from now
        min_size=1,
        max_size=12,
    )
)
def test_the_overdue_list_the_watch_and_the_annual_report_agree(world, specs):
    """All three figures of one generated set of requests, from the same rule, agree; and the
    report's on-time count is the rule's (a late answer stays late once the request is closed).
    The table holds other tests' requests too: the figures are compared before and after ours."""
    now = clock.now()
    controller = _controller(world)
    _, watched_before, report_before = _figures(now, controller.controller_id)
    created = max(datetime(now.year, 1, 1, tzinfo=UTC), now - timedelta(days=100))
    written = []
    for status, due_hours, closed_hours in specs:
        due = now + timedelta(hours=due_hours, minutes=7)  # never on the instant the figures are read
        closed = now + timedelta(hours=closed_hours, minutes=-3) if status in CLOSED_STATUSES else None
        written.append(_request(controller, status=status, due_at=due, closed_at=closed, created_at=created))
    listed, watched, report = _figures(now, controller.controller_id)

    overdue = {item.request_id for item in written if deadline_state.is_overdue(item.status, item.due_at, now)}
    assert listed == overdue
    assert watched - watched_before == len(overdue)
    assert report["open_overdue"] - report_before["open_overdue"] == len(overdue)
    answered = [item for item in written if item.status in deadline_state.ANSWERED]
    on_time = [
        item
        for item in answered
        if deadline_state.request_standing(item.status, item.due_at, item.closed_at, now).on_time
    ]
    assert report["answered_on_time"] - report_before["answered_on_time"] == len(on_time)
    assert report["answered_late"] - report_before["answered_late"] == len(answered) - len(on_time)
    _close_all(written)


def _close_all(written: list[RequestItem]) -> None:
    """Leave nothing open for the next example's watch (each example owns its figures)."""
    for item in written:
        item.delete()


# ------------------------------------------------------------------ extension routes


def _extend_by_controller_api(controller, request, *, status):
    report = StatusReport(
        status=status,
        reason="We have to search three archives.",
        extend_to=clock.isoformat(request.due_at + timedelta(days=20)),
    )
    return controller_requests.report_status(controller, request.request_id, report)


ROUTES = {
    "controller API, same status": (
        "email",
        Status.ACKNOWLEDGED.value,
        lambda c, r: _extend_by_controller_api(c, r, status="acknowledged"),
    ),
    "controller API, with a new status": (
        "email",
        Status.DELIVERED.value,
        lambda c, r: _extend_by_controller_api(c, r, status="in_progress"),
    ),
    "controller API, no status": (
        "email",
        Status.DELIVERED.value,
        lambda c, r: _extend_by_controller_api(c, r, status=None),
    ),
    "operator CLI (own data)": (
        "internal",
        Status.IN_PROGRESS.value,
        lambda c, r: own_requests.extend(
            r.request_id, r.due_at + timedelta(days=20), reason="We have to search three archives."
        ),
    ),
}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("passed", [False, True], ids=["before the due date", "after it passed"])
def test_every_extension_route_refuses_once_the_due_date_passed(world, route, passed):
    delivery, status, extend = ROUTES[route]
    controller = _controller(world, delivery)
    now = clock.now()
    due = now - timedelta(minutes=1) if passed else now + timedelta(days=2)
    request = _request(controller, status=status, due_at=due, created_at=now - timedelta(days=20))
    RequestItem(request.pk, request.sk).update(actions=[RequestItem.notices_sent.add({"due_in_3_days"})])
    if passed:
        with pytest.raises(Conflict) as refused:
            extend(controller, request)
        assert refused.value.code == "due_date_passed" and "Art. 12(3)" in refused.value.message
        stored = RequestItem.get(request.pk, request.sk, consistent_read=True)
        assert stored.due_at == due, "the due date did not move"
        assert deadline_state.is_overdue(stored.status, stored.due_at, clock.now())
    else:
        extend(controller, request)
        stored = RequestItem.get(request.pk, request.sk, consistent_read=True)
        assert abs(stored.due_at - (due + timedelta(days=20))) < SECOND
        assert stored.notices_sent is None, "the reminders start again for the new date"


def test_the_answer_says_who_tells_the_subject(world):
    controller = _controller(world)
    now = clock.now()
    held = _request(controller, status=Status.DELIVERED.value, due_at=now + timedelta(days=5))
    purged = _request(controller, status=Status.DELIVERED.value, due_at=now + timedelta(days=5), email=None)
    told = _extend_by_controller_api(controller, held, status=None)["subject_notification"]
    assert told["by"] == "rightsdesk"
    reminded = _extend_by_controller_api(controller, purged, status=None)["subject_notification"]
    assert reminded["by"] == "controller" and reminded["rule"] == "GDPR Art. 12(3)"
    assert "now yours" in reminded["message"]
    mails = _bodies(world, "MailQueue")
    mine = [m for m in mails if held.request_id in m["mail_id"] or purged.request_id in m["mail_id"]]
    assert [(m["kind"], made(m).context["reason"]) for m in mine] == [
        ("due_extended", "We have to search three archives.")
    ]


def test_a_status_report_needs_a_status_or_an_extension():
    with pytest.raises(ValueError):
        StatusReport(reason="nothing to say")


# ------------------------------------------------------------------ breach: late needs reasons


@pytest.mark.parametrize(
    "fields, rule",
    [
        ({"detected_at_hours": 1}, "lies in the future"),
        ({"notify_subjects": True}, "GDPR Art. 34(1)"),
        ({"detected_at_hours": -96}, "GDPR Art. 33(1)"),
        ({"categories": ["Bad Category"]}, "lowercase words"),
        ({"summary": " "}, "a summary is required"),
    ],
)
def test_a_refused_declaration_names_the_rule(world, fields, rule):
    controller = _controller(world)
    fields = dict(fields)
    detected = clock.now() + timedelta(hours=fields.pop("detected_at_hours", -2))
    declaration = breaches.Declaration(
        detected_at=detected,
        summary=fields.pop("summary", "Chat logs were readable."),
        categories=fields.pop("categories", ["chat_history"]),
        contact="dpo@rights.test",
        controller_ids=[controller.controller_id],
        **fields,
    )
    with pytest.raises(InvalidInput) as refused:
        breaches.declare(declaration)
    assert rule in refused.value.message


def test_a_late_breach_is_never_done_and_keeps_its_reasons(world):
    controller = _controller(world)
    reason = "The processor confirmed the scope only on day four."
    incident = breaches.declare(
        breaches.Declaration(
            detected_at=clock.now() - timedelta(days=4),
            summary="Chat logs were readable.",
            categories=["chat_history"],
            contact="dpo@rights.test",
            controller_ids=[controller.controller_id],
            delay_reason=reason,
        )
    )
    world.drain()
    rows = {
        row["deadline"]: row
        for row in breaches.deadlines(
            breaches.load(incident.incident_id), breaches.tally(breaches.load(incident.incident_id))
        )
    }
    assert rows["controllers"]["state"] == deadline_state.MET_LATE and rows["controllers"]["delay_reason"] == reason
    assert rows["authority"]["state"] == deadline_state.MISSED
    with pytest.raises(InvalidInput) as refused:
        breaches.authority_notified(incident.incident_id, reference="IP-1", at=clock.now())
    assert "GDPR Art. 33(1)" in refused.value.message and refused.value.fields == {
        "delay_reason": "required_after_72_hours"
    }
    breaches.authority_notified(incident.incident_id, reference="IP-1", at=clock.now(), delay_reason=reason)
    recorded = breaches.load(incident.incident_id)
    rows = {row["deadline"]: row for row in breaches.deadlines(recorded, breaches.tally(recorded))}
    assert rows["authority"]["state"] == deadline_state.MET_LATE and rows["authority"]["delay_reason"] == reason
    assert breaches.webhook_data(incident.incident_id, controller.controller_id)["delay_reason"] == reason


# ------------------------------------------------------------------ reminders keep going


def _bodies(world: World, queue: str) -> list[dict]:
    found = []
    while messages := world.sqs.receive_message(QueueUrl=world.queues[queue], MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            world.sqs.delete_message(QueueUrl=world.queues[queue], ReceiptHandle=message["ReceiptHandle"])
            found.append(json.loads(message["Body"]))
    return found


def test_reminders_keep_going_while_overdue_and_each_goes_once(world):
    _bodies(world, "DeliveryQueue"), _bodies(world, "MailQueue")
    controller = _controller(world)
    own = _controller(world, "internal")
    now = clock.now()
    due = now - timedelta(minutes=5)
    theirs = _request(controller, status=Status.DELIVERED.value, due_at=due)
    ours = _request(own, status=Status.IN_PROGRESS.value, due_at=due, locale="sl", request_type="complaint")

    def period(days_later: float) -> tuple[list, list]:
        at = now + timedelta(days=days_later)
        deadline_watch.run(at)
        deadline_watch.run(at)  # a second run in the same period sends nothing more
        return _bodies(world, "DeliveryQueue"), _bodies(world, "MailQueue")

    deliveries, mails = period(0)
    assert [(b["request_id"], b["notice"]) for b in deliveries if b["request_id"] == theirs.request_id] == [
        (theirs.request_id, "overdue_1")
    ]
    subject = [
        m
        for m in mails
        if m["kind"] == "own_request_overdue" and m["ids"]["request_id"] in (theirs.request_id, ours.request_id)
    ]
    assert [m["ids"]["request_id"] for m in subject] == [ours.request_id], "where the address is held"
    told = made(subject[0])
    assert told.locale == "sl" and told.context["authority_name"] == "Informacijski pooblaščenec"
    assert not [b for b in period(2)[0] if b["request_id"] == theirs.request_id], "every 3 days, not daily"
    deliveries, mails = period(4)
    assert [b["notice"] for b in deliveries if b["request_id"] == theirs.request_id] == ["overdue_2"]
    assert not [m for m in mails if m["kind"] == "own_request_overdue" and m["ids"]["request_id"] == ours.request_id], (
        "the subject is told once"
    )
    deliveries, mails = period(7.5)
    assert [b["notice"] for b in deliveries if b["request_id"] == theirs.request_id] == ["overdue_3"]
    digests = [m for m in mails if m["kind"] == "requests_overdue_digest"]
    listed = [r["request_id"] for d in digests for r in made(d).context["requests"]]
    assert listed.count(theirs.request_id) == 1 and listed.count(ours.request_id) == 1
    assert all(made(d).to == "operators@rights.test" for d in digests)
    assert not any("ana@example.org" in json.dumps(d) for d in digests), "ids and dates only"
    _, mails = period(8.5)
    assert not [m for m in mails if m["kind"] == "requests_overdue_digest" and theirs.request_id in json.dumps(m)], (
        "the operator is told once"
    )
    _close_all([theirs, ours])


def test_reminders_per_controller_and_run_are_bounded(world, monkeypatch):
    _bodies(world, "DeliveryQueue")
    monkeypatch.setattr(deadline_watch, "CONTROLLER_REMINDERS_PER_RUN", 2)
    controller = _controller(world)
    now = clock.now()
    written = [_request(controller, status=Status.DELIVERED.value, due_at=now - timedelta(hours=1)) for _ in range(3)]
    first = deadline_watch.run(now)
    assert first.deferred >= 1
    mine = {item.request_id for item in written}
    assert len([b for b in _bodies(world, "DeliveryQueue") if b["request_id"] in mine]) == 2
    deadline_watch.run(now + timedelta(hours=1))
    assert len([b for b in _bodies(world, "DeliveryQueue") if b["request_id"] in mine]) == 1, "the rest next hour"
    _close_all(written)


# ------------------------------------------------------------------ the new mails, in every language


@pytest.fixture
def public_base_url(monkeypatch):
    from rightsdesk.platform import config

    monkeypatch.setenv("PUBLIC_BASE_URL", "https://rights.test")
    config.reload()
    yield
    monkeypatch.undo()
    config.reload()


@pytest.mark.parametrize(
    "locale, heading",
    [
        ("en", "Why this notice comes later than 72 hours after detection"),
        ("de", "Warum diese Meldung später als 72 Stunden nach der Entdeckung kommt"),
        ("sl", "Zakaj to obvestilo prihaja pozneje kot 72 ur po odkritju"),
    ],
)
def test_a_late_breach_notice_gives_the_controller_the_reasons(public_base_url, locale, heading):
    from rightsdesk.render import notice_mail

    context = {
        "controller_name": "Acme",
        "incident_id": "inc_1",
        "detected_at": "2026-11-20T10:00:00Z",
        "summary": "Chat logs were readable.",
        "categories": ["chat_history"],
        "contact": "dpo@rights.test",
        "high_risk": False,
        "subjects_notified": False,
        "delay_reason": "Scope <confirmed> on day four.",
    }
    rendered = notice_mail.render("breach_controller", locale, context)
    assert heading in rendered.text and "Scope <confirmed> on day four." in rendered.text
    assert "Scope &lt;confirmed&gt; on day four." in rendered.html
    assert heading not in notice_mail.render("breach_controller", locale, {**context, "delay_reason": None}).text


@pytest.mark.parametrize(
    "locale, phrase",
    [
        ("en", "Your privacy request is overdue"),
        ("de", "Ihre Datenschutzanfrage ist überfällig"),
        ("sl", "Vaša zahteva glede zasebnosti je zapadla"),
    ],
)
def test_the_subject_of_an_overdue_own_request_is_told_where_to_complain(public_base_url, locale, phrase):
    from rightsdesk.render import i18n, own_mail

    context = {
        "request_id": "dsr_1",
        "request_type": "complaint",
        "due_at": "2026-12-10T23:59:59Z",
        "authority_name": "Informacijski pooblaščenec",
        "authority_url": "https://www.ip-rs.si",
    }
    rendered = own_mail.render("own_request_overdue", locale, context)
    assert rendered.subject == phrase
    text = " ".join(rendered.text.split())
    assert "Informacijski pooblaščenec" in text and "https://www.ip-rs.si" in text
    assert " ".join(i18n.format_datetime("2026-12-10T23:59:59Z", locale).split()) in text
    without = own_mail.render("own_request_overdue", locale, {**context, "authority_name": None})
    assert "Informacijski" not in without.text


def test_subjects_to_tell_but_none_reachable_is_no_missed_deadline():
    incident, now = _incident(100)
    nobody = {"pending": 0, "sent": 0, "failed": 0, "suppressed": 0}
    rows = {
        row["deadline"]: row for row in breaches.deadlines(incident, {"controller": PENDING, "subject": nobody}, now)
    }
    assert (
        rows["subjects"]["state"] == deadline_state.MET_ON_TIME
        and rows["controllers"]["state"] == deadline_state.MISSED
    )
