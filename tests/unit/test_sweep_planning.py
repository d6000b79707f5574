"""The sweeper's pure decisions: which buckets, which action, when a bucket may be closed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from rightsdesk.kernel import retention
from rightsdesk.kernel.retention import BUCKET_SECONDS, Rule
from rightsdesk.retention import sweeper
from rightsdesk.retention.sweeper import Action, Snapshot
from rightsdesk.store import due_index

DAY = BUCKET_SECONDS
NOW = int(datetime(2026, 5, 10, 12, 30, tzinfo=timezone.utc).timestamp())
TODAY = NOW // DAY * DAY


def test_the_first_sweep_starts_at_the_tables_creation_day():
    created = TODAY - 3 * DAY + 500
    assert list(due_index.buckets(None, created, NOW)) == [TODAY - 3 * DAY, TODAY - 2 * DAY, TODAY - DAY, TODAY]


def test_later_sweeps_start_after_the_last_swept_bucket_and_end_with_today():
    assert list(due_index.buckets(TODAY - 2 * DAY, 0, NOW)) == [TODAY - DAY, TODAY]
    assert list(due_index.buckets(TODAY - DAY, 0, NOW)) == [TODAY], "today's bucket is queried every time"


@given(swept_days_ago=st.integers(min_value=1, max_value=2000), seconds_into_day=st.integers(0, DAY - 1))
def test_buckets_are_contiguous_and_never_skip_today(swept_days_ago, seconds_into_day):
    now = TODAY + seconds_into_day
    found = list(due_index.buckets(TODAY - swept_days_ago * DAY, 0, now))
    assert found[-1] == TODAY
    assert len(found) == swept_days_ago
    assert all(b - a == DAY for a, b in zip(found, found[1:]))


def test_a_bucket_closes_only_after_its_day_and_the_grace_period():
    assert not due_index.closable(TODAY, NOW)
    assert not due_index.closable(TODAY - DAY, TODAY + due_index.GRACE_SECONDS - 1)
    assert due_index.closable(TODAY - DAY, TODAY + due_index.GRACE_SECONDS)


def test_the_plan_follows_the_rules_table():
    due = NOW - 1
    assert sweeper.plan(Snapshot(Rule.UNVERIFIED_REQUEST.value, due, held=False), NOW) is Action.DELETE
    assert sweeper.plan(Snapshot(Rule.VERIFICATION_CODE.value, due, held=False), NOW) is Action.DELETE
    assert sweeper.plan(Snapshot(Rule.DELIVERED_SUBJECT_DATA.value, due, held=False), NOW) is Action.PURGE
    assert sweeper.plan(Snapshot(Rule.CLOSED_INTERNAL_REQUEST.value, due, held=False), NOW) is Action.PURGE
    assert sweeper.plan(Snapshot(Rule.SKELETON.value, due, held=False), NOW) is Action.DELETE
    assert sweeper.plan(Snapshot(Rule.CONSENT_RECORD.value, due, held=False), NOW) is Action.DELETE


def test_the_plan_skips_held_rescheduled_vanished_and_unknown_items():
    assert sweeper.plan(Snapshot(Rule.SKELETON.value, NOW - 1, held=True), NOW) is Action.HELD
    assert sweeper.plan(Snapshot(Rule.SKELETON.value, NOW + 1, held=False), NOW) is Action.NOT_DUE
    assert sweeper.plan(Snapshot(None, None, held=False), NOW) is Action.NOT_DUE
    assert sweeper.plan(None, NOW) is Action.GONE
    assert sweeper.plan(Snapshot("forever", NOW - 1, held=False), NOW) is Action.UNKNOWN_RULE


def test_due_exactly_now_is_due():
    assert sweeper.plan(Snapshot(Rule.VERIFICATION_CODE.value, NOW, held=False), NOW) is Action.DELETE


@given(due=st.integers(0, 10**11), now=st.integers(0, 10**11))
def test_the_index_bound_selects_exactly_the_due_entries(due, now):
    sort_key = retention.expiry_index_keys(due, "REQ#x", "REQUEST", now=now)["gsi2sk"]
    assert (sort_key < due_index.due_bound(now)) == (due <= now)


def test_a_past_due_time_is_filed_in_the_current_bucket():
    keys = retention.expiry_index_keys(NOW - 10 * DAY, "REQ#x", "REQUEST", now=NOW)
    assert keys["gsi2pk"] == f"EXP#{TODAY}", "an already-swept bucket would never be read again"
    assert keys["gsi2sk"].startswith(f"{NOW - 10 * DAY:012d}#"), "the true due time still orders it"


def test_a_purge_moves_the_request_on_to_its_skeleton_clock():
    created = datetime(2026, 1, 1, tzinfo=timezone.utc)
    verified = created + timedelta(hours=2)
    assert retention.after_purge(created, verified) == (Rule.SKELETON, verified)
    assert retention.after_purge(created, None) == (Rule.SKELETON, created)


def test_a_requests_ttl_comes_from_its_own_dates():
    created = datetime(2026, 1, 1, tzinfo=timezone.utc)
    verified = created + timedelta(hours=2)
    assert retention.request_expires_at(created, None) == int((created + timedelta(hours=72)).timestamp())
    assert retention.request_expires_at(created, verified) == int((verified + timedelta(days=3 * 365)).timestamp())


def test_personal_fields_count_as_gone_from_their_purge_time():
    assert retention.personal_data_due(Rule.DELIVERED_SUBJECT_DATA.value, NOW, at=NOW)
    assert not retention.personal_data_due(Rule.DELIVERED_SUBJECT_DATA.value, NOW + 1, at=NOW)
    assert not retention.personal_data_due(Rule.SKELETON.value, NOW - 1, at=NOW), "a delete rule is TTL's business"
    assert not retention.personal_data_due(None, None, at=NOW)
    assert not retention.personal_data_due("forever", NOW - 1, at=NOW)


def test_the_report_counts_by_rule_and_outcome():
    report = sweeper.Report(now=NOW)
    report.count("skeleton", "deleted")
    report.count("skeleton", "deleted")
    report.count(None, "gone")
    data = report.as_dict()
    assert data["by_rule"] == {"skeleton": {"deleted": 2}, "unknown": {"gone": 1}}
    assert report.total("deleted") == 2
