"""A request forwarded to a pull controller that never fetches it: reminded by the deadline
notices, then, the rule unfetched_pull_request's period after its due date, the sweeper (through
the expiry index, never a scan) purges its personal fields, marks it undelivered (forwarded ->
delivery_failed, audited) and counts it for the operator's alarm."""

from __future__ import annotations

from datetime import timedelta

import pytest
from moto import mock_aws
from pynamodb.connection import Connection

from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.status import Status
from rightsdesk.platform import hashing
from rightsdesk.retention import sweeper
from rightsdesk.routing import controller_lookup, controller_requests, delivery
from rightsdesk.store import queries
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.requests import RequestItem
from tests.support.aws import fast_pynamodb_sessions
from tests.support.notices_world import World, aws_environment

EMAIL = "mia.petek@example.org"


@pytest.fixture
def world():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        aws_environment(patch)
        fast_pynamodb_sessions(patch)
        found = World(patch, prefix="rightsdesk-pull")
        found.controller("ctl_pull")
        ControllerItem(ControllerItem.key("ctl_pull"), ControllerItem.SK).update(
            actions=[ControllerItem.delivery.set("pull")]
        )

        def refuse_scan(*args, **kwargs):
            raise AssertionError("the sweeper found it through the expiry index, never a scan")

        patch.setattr(Connection, "scan", refuse_scan)
        yield found


def forwarded_pull_request() -> RequestItem:
    """A verified request as the dispatcher forwards it to a pull controller."""
    request_id, now = hashing.new_id("dsr"), clock.now()
    RequestItem(
        RequestItem.key(request_id),
        RequestItem.SK,
        request_id=request_id,
        controller_id="ctl_pull",
        site="pull",
        request_type="access",
        status=Status.VERIFIED.value,
        email=EMAIL,
        name="Mia Petek",
        details="chat 4",
        subject_hash=hashing.email_hash(EMAIL),
        created_at=now,
        verified_at=now,
        due_at=now + timedelta(days=30),
        updated_at=now,
        gsi1pk="CTRL#ctl_pull",
        gsi1sk=f"verified#{clock.isoformat(now)}#{request_id}",
        **retention.schedule(retention.Rule.SKELETON, now, RequestItem.key(request_id), RequestItem.SK),
    ).save()
    return delivery.mark_forwarded(queries.load_request(request_id), mode="pull")


def stored(request_id: str) -> RequestItem:
    return RequestItem.get(RequestItem.key(request_id), RequestItem.SK, consistent_read=True)


def test_forwarding_to_a_pull_controller_sets_the_unfetched_deadline_from_the_due_date(world):
    request = forwarded_pull_request()
    period = retention.keep_for(retention.Rule.UNFETCHED_PULL_REQUEST)
    assert request.retention_rule == "unfetched_pull_request"
    assert request.retention_due_at == int((request.due_at + period).timestamp())


def test_a_request_never_fetched_is_purged_marked_undelivered_and_counted(world):
    never = forwarded_pull_request()
    fetched = forwarded_pull_request()
    controller_requests.fetch(controller_lookup.get_controller("ctl_pull"), fetched.request_id)
    assert stored(fetched.request_id).status == "delivered"

    clock.advance((never.due_at - clock.now()).total_seconds() + 86400)  # overdue, within the period
    assert sweeper.sweep().total("undelivered") == 0
    assert stored(never.request_id).email == EMAIL, "kept while the period runs (the reminders go on)"

    clock.advance(retention.keep_for(retention.Rule.UNFETCHED_PULL_REQUEST).total_seconds())
    report = sweeper.sweep()

    assert report.total("undelivered") == 1 and report.by_rule["unfetched_pull_request"]["undelivered"] == 1
    gone = stored(never.request_id)
    assert gone.status == "delivery_failed" and gone.email is None and gone.name is None and gone.details is None
    assert gone.purged_by == "sweeper" and gone.retention_rule == "skeleton"
    steps = [
        (e.from_status, e.to_status, e.actor, e.cause)
        for e in AuditEvent.query(gone.pk)
        if e.action == "status_changed"
    ]
    assert steps[-1] == ("forwarded", "delivery_failed", "retention-sweeper", "never_fetched")
    assert stored(fetched.request_id).status == "delivered", "a fetched request is not touched"
    assert sweeper.sweep().total("undelivered") == 0, "once"


def test_a_fetch_at_the_last_moment_wins(world, monkeypatch):
    request = forwarded_pull_request()
    clock.advance(
        (request.due_at - clock.now()).total_seconds()
        + retention.keep_for(retention.Rule.UNFETCHED_PULL_REQUEST).total_seconds()
        + 60
    )
    real = sweeper._never_fetched

    def fetched_first(item, now, *who):
        RequestItem(item.pk, item.sk).update(actions=[RequestItem.status.set(Status.DELIVERED.value)])
        return real(item, now, *who)

    monkeypatch.setattr(sweeper, "_never_fetched", fetched_first)
    report = sweeper.sweep()
    assert report.total("undelivered") == 0 and stored(request.request_id).status == "delivered"
