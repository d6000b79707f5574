from hypothesis import given
from hypothesis import strategies as st

from rightsdesk.kernel.status import CLOSED, OPEN, TRANSITIONS, Status, can_transition, is_open


def test_the_documented_happy_paths_are_allowed():
    path = ["identity_unverified", "verified", "forwarded", "delivered", "acknowledged", "completed"]
    for current, target in zip(path, path[1:]):
        assert can_transition(current, target), (current, target)
    assert can_transition("verified", "in_progress")
    assert can_transition("in_progress", "rejected")
    assert can_transition("forwarded", "delivery_failed")
    assert can_transition("identity_unverified", "expired")


def test_closed_requests_never_change_again():
    for closed in CLOSED:
        assert TRANSITIONS[closed] == frozenset()


def test_every_open_request_can_be_cancelled_by_its_subject():
    for status in OPEN:
        assert can_transition(status, Status.CANCELLED)


def test_no_skipping_verification():
    assert not can_transition("identity_unverified", "forwarded")
    assert not can_transition("identity_unverified", "completed")
    assert not can_transition("verified", "delivered")


@given(st.sampled_from(list(Status)), st.sampled_from(list(Status)))
def test_no_transition_leaves_a_closed_state_or_returns_to_unverified(current, target):
    if can_transition(current, target):
        assert is_open(current)
        assert target is not Status.IDENTITY_UNVERIFIED
        assert target != current
