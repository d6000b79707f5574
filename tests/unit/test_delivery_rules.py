"""Delivery rules without AWS: the retry schedule, queue messages, deadline notices, payload privacy."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from rightsdesk.routing import deadline_watch, delivery, delivery_words, payloads
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.requests import RequestItem

UTC = timezone.utc


# ------------------------------------------------------------------ retry schedule


def test_retry_schedule_is_the_design_table_then_12_hours():
    hours = 3600
    expected = [
        5,
        300,
        1800,
        2 * hours,
        5 * hours,
        10 * hours,
        12 * hours,
        12 * hours,
        12 * hours,
        12 * hours,
        12 * hours,
    ]
    assert [delivery.retry_delay(attempt) for attempt in range(1, 12)] == expected


def test_every_retry_fits_sqs_limits_and_the_queue_retention():
    assert all(0 < delay <= 12 * 3600 for delay in delivery.RETRY_DELAYS_SECONDS)  # ChangeMessageVisibility's maximum
    total = sum(delivery.retry_delay(attempt) for attempt in range(1, delivery.DEFAULT_MAX_ATTEMPTS))
    assert total < 4 * 24 * 3600, "the DeliveryQueue keeps messages 4 days; the schedule must end before"


def test_exhausted_comes_back_at_once():
    assert delivery.Exhausted("http_500").delay == 0


# ------------------------------------------------------------------ messages


def test_delivery_ids_are_stable_per_event_and_distinct_across_events():
    route = delivery.DeliveryMessage.from_body({"request_id": "dsr_1", "event": "route"}, message_id="m1")
    again = delivery.DeliveryMessage.from_body({"request_id": "dsr_1", "event": "route"}, message_id="m2")
    cancelled = delivery.DeliveryMessage.from_body({"request_id": "dsr_1", "event": "cancelled"}, message_id="m1")
    soon = delivery.DeliveryMessage.from_body(
        {"request_id": "dsr_1", "event": "overdue", "notice": "due_in_3_days"}, message_id="m1"
    )
    today = delivery.DeliveryMessage.from_body(
        {"request_id": "dsr_1", "event": "overdue", "notice": "due_today"}, message_id="m1"
    )
    assert route.delivery_id == again.delivery_id, "a re-queued route is the same delivery"
    assert len({route.delivery_id, cancelled.delivery_id, soon.delivery_id, today.delivery_id}) == 4
    assert route.key() == {"delivery_id": route.delivery_id, "event": "route"}


def test_a_test_event_names_a_controller_and_is_one_delivery_per_message():
    first = delivery.DeliveryMessage.from_body(
        {"request_id": "", "event": "test", "controller_id": "ctl_a"}, message_id="m1"
    )
    second = delivery.DeliveryMessage.from_body(
        {"request_id": "", "event": "test", "controller_id": "ctl_a"}, message_id="m2"
    )
    assert first.delivery_id != second.delivery_id
    named = delivery.DeliveryMessage.from_body(
        {"request_id": "", "event": "test", "controller_id": "ctl_a", "test_id": "t1"}, message_id="m9"
    )
    assert named.test_id == "t1"


@pytest.mark.parametrize(
    "body",
    [
        {"request_id": "dsr_1", "event": "teleport"},
        {"request_id": "", "event": "route"},
        {"request_id": "", "event": "test"},
        {"request_id": "dsr_1", "event": "test", "controller_id": "ctl_a"},
        {},
    ],
)
def test_malformed_messages_are_refused(body):
    with pytest.raises(ValueError):
        delivery.DeliveryMessage.from_body(body, message_id="m1")


BREACH = {"event": "breach.notice", "controller_id": "ctl_a", "incident_id": "inc_1"}
POLICY = {"event": "policy.updated", "controller_id": "ctl_a", "doc": "privacy", "version": "2026-12"}


def test_controller_events_name_a_controller_and_what_they_are_about_and_no_request():
    breach = delivery.DeliveryMessage.from_body(BREACH, message_id="m1")
    policy = delivery.DeliveryMessage.from_body(POLICY, message_id="m1")
    assert (breach.request_id, breach.controller_id, breach.incident_id, breach.doc) == ("", "ctl_a", "inc_1", None)
    assert (policy.request_id, policy.controller_id, policy.doc, policy.version, policy.incident_id) == (
        "",
        "ctl_a",
        "privacy",
        "2026-12",
        None,
    )
    assert {"breach.notice", "policy.updated"} <= set(delivery_words.EVENTS)


def test_controller_event_delivery_ids_are_stable_and_distinct():
    def delivery_id(body: dict, message_id: str = "m1") -> str:
        return delivery.DeliveryMessage.from_body(body, message_id=message_id).delivery_id

    assert delivery_id(BREACH, "m1") == delivery_id(BREACH, "m2"), "a redelivered or re-queued copy is the same"
    assert delivery_id(POLICY, "m1") == delivery_id(POLICY, "m2")
    others = [
        {**BREACH, "controller_id": "ctl_b"},
        {**BREACH, "incident_id": "inc_2"},
        {**POLICY, "controller_id": "ctl_b"},
        {**POLICY, "version": "2027-01"},
        {**POLICY, "doc": "terms"},
        {**POLICY, "doc": "privacy-2026", "version": "12"},
        {"event": "route", "request_id": "ctl_a"},
        {"event": "test", "controller_id": "ctl_a", "test_id": "inc_1"},
    ]
    ids = {delivery_id(BREACH), delivery_id(POLICY), *(delivery_id(body) for body in others)}
    assert len(ids) == 2 + len(others)
    message = delivery.DeliveryMessage.from_body(BREACH, message_id="m1")
    assert message.key() == {"delivery_id": message.delivery_id, "event": "breach.notice"}, "ids only"


@pytest.mark.parametrize(
    "body",
    [
        {"event": "breach.notice", "incident_id": "inc_1"},
        {"event": "breach.notice", "controller_id": "ctl_a"},
        {**BREACH, "request_id": "dsr_1"},
        {**BREACH, "doc": "privacy"},
        {**BREACH, "incident_id": "inc_" + "1" * 61},
        {**BREACH, "incident_id": 7},
        {**BREACH, "controller_id": ["ctl_a"]},
        {**BREACH, "controller_id": "dpo@shop.example"},
        {**BREACH, "incident_id": "inc 1"},
        {"event": "policy.updated", "controller_id": "ctl_a", "doc": "privacy"},
        {"event": "policy.updated", "controller_id": "ctl_a", "version": "2026-12"},
        {**POLICY, "controller_id": ""},
        {**POLICY, "incident_id": "inc_1"},
        {**POLICY, "request_id": "dsr_1"},
        {**POLICY, "version": "../2026"},
    ],
)
def test_malformed_controller_events_are_refused(body):
    with pytest.raises(ValueError):
        delivery.DeliveryMessage.from_body(body, message_id="m1")


# ------------------------------------------------------------------ deadline notices


@pytest.mark.parametrize(
    "now, notice",
    [
        (datetime(2026, 12, 19, 23, 0, tzinfo=UTC), None),
        (datetime(2026, 12, 20, 0, 5, tzinfo=UTC), "due_in_3_days"),
        (datetime(2026, 12, 22, 23, 59, tzinfo=UTC), "due_in_3_days"),
        (datetime(2026, 12, 23, 0, 5, tzinfo=UTC), "due_today"),
        (datetime(2026, 12, 23, 13, 15, tzinfo=UTC), "due_today"),
        (datetime(2026, 12, 23, 13, 16, tzinfo=UTC), "overdue_1"),  # passed on its own day: overdue at once
        (datetime(2026, 12, 24, 0, 5, tzinfo=UTC), "overdue_1"),
        (datetime(2026, 12, 26, 23, 59, tzinfo=UTC), "overdue_1"),
        (datetime(2026, 12, 27, 0, 0, tzinfo=UTC), "overdue_2"),
        (datetime(2026, 12, 30, 0, 5, tzinfo=UTC), "overdue_3"),
        (datetime(2027, 3, 23, 0, 5, tzinfo=UTC), "overdue_30"),
    ],
)
def test_notices_go_three_calendar_days_before_on_the_due_date_and_every_3_days_after(now, notice):
    due = datetime(2026, 12, 23, 13, 15, tzinfo=UTC)
    assert deadline_watch.notice_for(due, now) == notice


# ------------------------------------------------------------------ what a controller is told


def _request(**overrides) -> RequestItem:
    at = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    values = dict(
        request_id="dsr_1",
        controller_id="ctl_a",
        site="shop",
        request_type="erasure",
        status="forwarded",
        locale="de",
        relationship="guardian",
        purposes=None,
        flags=["guardian"],
        email="ana@example.org",
        name="Ana Novak",
        details="chat on 3 May",
        created_at=at,
        verified_at=at,
        due_at=at + timedelta(hours=72),
    )
    values.update(overrides)
    return RequestItem(RequestItem.key("dsr_1"), RequestItem.SK, **values)


def _controller(**overrides) -> ControllerItem:
    values = dict(
        controller_id="ctl_a",
        name="Shop",
        site_key="shop",
        contact_email="privacy@shop.example",
        delivery="webhook",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    values.update(overrides)
    return ControllerItem(ControllerItem.key("ctl_a"), ControllerItem.SK, **values)


PERSONAL = ("ana@example.org", "Ana Novak", "chat on 3 May")


def test_the_forwarded_event_carries_what_the_controller_needs():
    data = payloads.forwarded(_request(), _controller(purge_after_seconds=1800))
    assert data["subject"] == {"email": "ana@example.org", "name": "Ana Novak", "details": "chat on 3 May"}
    assert data["type"] == "erasure" and data["relationship"] == "guardian" and data["flags"] == ["guardian"]
    assert data["due_at"] == "2026-11-26T12:00:00Z"
    assert data["links"]["request"].endswith("/v1/controller/requests/dsr_1")
    assert data["personal_data_kept_seconds"] == 1800


def test_after_the_purge_the_forwarded_event_has_no_subject():
    purged = _request(email=None, name=None, details=None, personal_purged_at=datetime(2026, 11, 23, 13, tzinfo=UTC))
    data = payloads.forwarded(purged, _controller())
    assert data["subject"] is None
    assert not any(value in str(data) for value in PERSONAL)


def test_an_overdue_reminder_is_read_as_overdue_with_its_number_and_is_its_own_delivery():
    request = _request()
    assert payloads.notice(request, notice="overdue_2") | {"links": None} == {
        **payloads.notice(request),
        "links": None,
        "notice": "overdue",
        "reminder": 2,
    }
    assert payloads.notice_mail(request, _controller(), notice="overdue_2")["notice"] == "overdue"
    first, second = (
        delivery.DeliveryMessage.from_body({"request_id": "dsr_1", "event": "overdue", "notice": n}, message_id="m")
        for n in ("overdue_1", "overdue_2")
    )
    assert (first.notice, second.notice) == ("overdue_1", "overdue_2")
    assert first.delivery_id != second.delivery_id


@pytest.mark.parametrize("notice", [None, "due_in_3_days", "due_today", "overdue_1"])
def test_notices_never_carry_personal_data_even_before_the_purge(notice):
    request = _request()
    assert not any(value in str(payloads.notice(request, notice=notice)) for value in PERSONAL)
    mail = payloads.notice_mail(request, _controller(), notice=notice or "cancelled")
    assert not any(value in str(mail) for value in PERSONAL)
    failed = payloads.failed_mail(request, _controller(), attempts=12, cause="http_500")
    assert not any(value in str(failed) for value in PERSONAL)
