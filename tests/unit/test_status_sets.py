"""The named status sets (rightsdesk.kernel.status) are what their names claim, and every module
reads them from there."""

from __future__ import annotations

import pytest

from rightsdesk.kernel import status
from rightsdesk.kernel.status import Status

S = Status


def test_open_and_closed_partition_the_statuses():
    assert status.OPEN | status.CLOSED == set(Status)
    assert not status.OPEN & status.CLOSED
    assert all(not status.TRANSITIONS[closed] for closed in status.CLOSED), "a closed request stays closed"


def test_answered_and_withdrawn_partition_the_closed_statuses():
    assert status.ANSWERED | status.WITHDRAWN == status.CLOSED
    assert not status.ANSWERED & status.WITHDRAWN
    assert status.ANSWERED == {S.COMPLETED, S.REJECTED}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("WATCHED", ("verified", "forwarded", "delivered", "delivery_failed", "acknowledged", "in_progress")),
        (
            "VISIBLE_TO_CONTROLLER",
            (
                "forwarded",
                "delivered",
                "delivery_failed",
                "acknowledged",
                "in_progress",
                "completed",
                "rejected",
                "cancelled",
            ),
        ),
        ("CONTROLLER_ANSWERS", ("acknowledged", "in_progress", "completed", "rejected")),
        ("AWAITING_DELIVERY", ("forwarded", "delivery_failed")),
        ("BEFORE_ROUTING", ("identity_unverified", "verified")),
        ("UNPROVEN", ("identity_unverified", "expired")),
    ],
)
def test_each_set_in_lifecycle_order(name, expected):
    assert status.values(getattr(status, name)) == expected


def test_watched_requests_are_open_and_past_verification():
    assert status.WATCHED < status.OPEN
    assert all(S.VERIFIED == watched or watched in status.reachable_from(S.VERIFIED) for watched in status.WATCHED)


def test_a_controller_answer_is_a_transition_a_delivered_request_can_make():
    assert status.CONTROLLER_ANSWERS <= status.TRANSITIONS[S.DELIVERED] | {S.ACKNOWLEDGED}


@pytest.mark.parametrize("name", ["OPEN", "CLOSED", "WATCHED", "VISIBLE_TO_CONTROLLER", "ANSWERED", "WITHDRAWN"])
def test_a_stored_status_string_is_found_in_the_sets(name):
    """Items store the value: `item.status in SET` must work with the plain string."""
    members = getattr(status, name)
    assert all(member.value in members for member in members)
    assert all(other.value not in members for other in set(Status) - members)


def test_the_modules_read_the_sets_from_the_kernel():
    from rightsdesk.kernel import deadline_state
    from rightsdesk.routing import controller_requests, deadline_watch, takeover
    from rightsdesk_cli.annual import report

    assert deadline_state.ANSWERED is status.ANSWERED and report.ANSWERED is status.ANSWERED
    assert deadline_state.WITHDRAWN is status.WITHDRAWN
    assert deadline_watch.WATCHED is status.WATCHED
    assert takeover.ANSWERS == status.values(status.CONTROLLER_ANSWERS)
    assert controller_requests.VisibleStatus.__args__ == status.values(status.VISIBLE_TO_CONTROLLER)
