"""The status machine as stored, against moto in-process: whatever sequence of status changes is
tried, from fresh or stale copies of a request, with transient transaction conflicts in between,
the stored request only ever takes allowed steps, and its audit trail records exactly those steps.

test_status.py checks the transition table itself; this drives rightsdesk.store.lifecycle.transition,
whose conditional write is what enforces the table when two writers race.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from moto import mock_aws
from pynamodb.exceptions import TransactWriteError

from local import faults
from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import IllegalTransition
from rightsdesk.kernel.status import TRANSITIONS, Status, can_transition
from rightsdesk.platform import config, hashing
from rightsdesk.store import audit, deletion
from rightsdesk.store.items.requests import RequestItem
from rightsdesk.store.lifecycle import listing_key, transition
from tests.support.aws import moto_cloud

REGION = "eu-central-1"


@pytest.fixture(scope="module")
def table():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        yield moto_cloud(patch, "rightsdesk-lifecycle", region=REGION).tables["RightsTable"]
    faults.clear()
    config.reload()


def new_request() -> RequestItem:
    now = clock.now()
    request_id = hashing.new_id("dsr")
    request = RequestItem(
        RequestItem.key(request_id),
        RequestItem.SK,
        request_id=request_id,
        controller_id="ctl_p",
        site="p",
        request_type="access",
        status=Status.IDENTITY_UNVERIFIED.value,
        created_at=now,
        updated_at=now,
        gsi1pk="CTRL#ctl_p",
        gsi1sk=listing_key(Status.IDENTITY_UNVERIFIED.value, now, request_id),
    )
    request.save()
    return request


def stored(request_id: str) -> RequestItem:
    return RequestItem.get(RequestItem.key(request_id), RequestItem.SK, consistent_read=True)


class StoredLifecycle(RuleBasedStateMachine):
    """Copies of one request held by several writers; each tries status changes on its copy."""

    @initialize()
    def create(self):
        self.request = new_request()
        self.copies: list[RequestItem] = [stored(self.request.request_id)]
        self.steps: list[tuple[str, str]] = []  # (from, to) actually made

    @rule()
    def another_writer_loads_it(self):
        self.copies.append(stored(self.request.request_id))

    @rule(writer=st.integers(min_value=0, max_value=7), data=st.data(), conflicts=st.sampled_from([0, 0, 1, 2]))
    def try_a_change(self, writer, data, conflicts):
        copy = self.copies[writer % len(self.copies)]
        # Mostly a step the writer believes allowed (so runs get deep into the machine), else any status.
        allowed = sorted(TRANSITIONS[Status(copy.status)])
        target = data.draw(
            st.sampled_from(allowed) if allowed and data.draw(st.booleans()) else st.sampled_from(list(Status))
        )
        before = stored(self.request.request_id).status
        if conflicts:  # another transaction touched the item: DynamoDB cancels ours, no condition failed
            faults.add(
                [
                    {
                        "service": "dynamodb",
                        "operation": "TransactWriteItems",
                        "times": conflicts,
                        "error": "TransactionCanceledException",
                        "reasons": ["TransactionConflict", None],
                    }
                ]
            )
        try:
            with faults.running("lifecycle-test"):
                transition(copy, target, actor="test", at=clock.now() + timedelta(seconds=len(self.steps)))
        except IllegalTransition:
            # Refused: the copy was stale or the step is not allowed from the copy's status.
            assert copy.status != before or not can_transition(before, target)
            assert stored(self.request.request_id).status == before
        except TransactWriteError:
            pytest.fail("a transient conflict surfaced although it cleared within the retries")
        else:
            assert copy.status == target.value
            # the copy is the stored item, without reading it back
            assert copy.attribute_values == stored(self.request.request_id).attribute_values
            assert before == self.steps[-1][1] if self.steps else before == Status.IDENTITY_UNVERIFIED.value
            self.steps.append((before, target.value))
        finally:
            faults.clear()

    @invariant()
    def only_allowed_steps_were_stored_and_audited(self):
        if not hasattr(self, "request"):
            return
        for current, target in self.steps:
            assert can_transition(current, target), (current, target)
        trail = [(e.from_status, e.to_status) for e in audit.trail(self.request.pk) if e.to_status]
        assert trail == self.steps, "each change has exactly one audit event, in order"
        expected = self.steps[-1][1] if self.steps else Status.IDENTITY_UNVERIFIED.value
        assert stored(self.request.request_id).status == expected


def test_a_stored_request_only_takes_allowed_steps(table):
    StoredLifecycle.TestCase.settings = settings(
        max_examples=15,
        stateful_step_count=10,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    StoredLifecycle.TestCase().runTest()


def test_conflicts_that_outlast_the_retries_surface_and_change_nothing(table):
    request = new_request()
    faults.add(
        [
            {
                "service": "dynamodb",
                "operation": "TransactWriteItems",
                "times": 3,
                "error": "TransactionCanceledException",
                "reasons": [None, "TransactionConflict"],
            }
        ]
    )
    try:
        with faults.running("lifecycle-test"), pytest.raises(TransactWriteError):
            transition(request, Status.VERIFIED, actor="test")
    finally:
        faults.clear()
    assert stored(request.request_id).status == Status.IDENTITY_UNVERIFIED.value
    assert [e for e in audit.trail(request.pk) if e.to_status] == []


def test_a_failed_condition_is_an_illegal_transition_not_a_retry(table):
    request = new_request()
    stale = stored(request.request_id)
    transition(request, Status.VERIFIED, actor="test")
    with pytest.raises(IllegalTransition):
        transition(stale, Status.EXPIRED, actor="test")  # allowed from the stale copy's status, not any more
    assert stored(request.request_id).status == Status.VERIFIED.value


def _verify_updates(request: RequestItem) -> list:
    now = clock.now()
    return [
        RequestItem.status_token_hash.set("t" * 64),
        RequestItem.verified_code_hash.set("c" * 64),
        RequestItem.verify_retries.set(2),
        RequestItem.verified_at.set(now),
        RequestItem.due_at.set(now + timedelta(days=30)),
        RequestItem.expires_at.set(clock.epoch() + 86400),
        RequestItem.flags.set(["excessive", "guardian"]),
        *retention.schedule_actions(request, retention.Rule.SKELETON, now),
    ]


def _purge_updates(request: RequestItem) -> list:
    return deletion.purge_actions(RequestItem, deletion.Cause.ERASURE, clock.now())


def _counted_update(request: RequestItem) -> list:
    return [RequestItem.verify_retries.add(1)]  # only the table knows the sum: read back


@pytest.mark.parametrize(
    ("target", "updates"),
    [
        (Status.VERIFIED, _verify_updates),
        (Status.CANCELLED, _purge_updates),
        (Status.VERIFIED, _counted_update),
        (Status.EXPIRED, lambda request: []),
    ],
)
def test_the_request_a_transition_returns_is_the_stored_one(table, target, updates):
    """transition() sets what it wrote on the request instead of reading it back; whatever the
    updates, the caller's copy and the stored item agree, attribute for attribute."""
    request = new_request()
    request.update(actions=[RequestItem.email.set("someone@example.org"), RequestItem.name.set("Some One")])
    returned = transition(request, target, actor="test", updates=updates(request))
    assert returned.attribute_values == stored(request.request_id).attribute_values


# ------------------------------------------------------------------ the due date as stored

from datetime import datetime, timezone  # noqa: E402 - this test's own imports, kept with it

from hypothesis import given  # noqa: E402

from rightsdesk.kernel import deadline_state, deadlines  # noqa: E402

verification_instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 1), timezones=st.just(timezone.utc)
)


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(verified_at=verification_instants, kind=st.sampled_from([("access", "self"), ("erasure", "guardian")]))
def test_the_due_date_is_stored_to_the_microsecond_and_is_overdue_from_the_next_day(table, verified_at, kind):
    """The verification step stores the due date; a month's period ends at 23:59:59.999999 UTC
    (Regulation 1182/71 Art. 3), and the stored value must keep that last microsecond, or the request
    would be overdue up to a second early (or, rounded up, a day late)."""
    request_type, relationship = kind
    due = deadlines.due_at(verified_at, request_type=request_type, relationship=relationship)
    request = new_request()
    transition(
        request,
        Status.VERIFIED,
        actor="test",
        at=verified_at,
        updates=[RequestItem.verified_at.set(verified_at), RequestItem.due_at.set(due)],
    )
    kept = stored(request.request_id).due_at
    assert kept == due
    open_ = Status.VERIFIED.value
    assert not deadline_state.is_overdue(open_, kept, due)
    assert deadline_state.is_overdue(open_, kept, due + timedelta(microseconds=1))
    if relationship == "self":
        assert (kept + timedelta(microseconds=1)).time() == datetime.min.time(), "overdue from midnight UTC"
