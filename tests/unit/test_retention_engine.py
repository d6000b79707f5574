"""The retention engine against moto in-process: the sweeper, legal holds and what reads show.

The clock is the core's injectable one (what the local run's /_dev/clock moves). The delivered and
the internally closed states are reached through the same core calls the dispatcher and
the operator's own handling make; see tests/support/retention_world.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from rightsdesk.intake import submissions
from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import Conflict, NotFound
from rightsdesk.kernel.retention import Rule
from rightsdesk.retention import holds, sweeper
from rightsdesk.store import queries
from rightsdesk.store.items.requests import RequestItem
from rightsdesk.store.items.sweeps import SweepState
from rightsdesk.store.items.table import bind_table
from tests.support.retention_world import DETAILS, EMAIL, NAME, World, world_in_moto

HOUR = 3600
DAY = 24 * HOUR


@pytest.fixture
def world():
    with world_in_moto(no_scans="retention must never scan the table") as made:
        yield made


def at(seconds: float) -> None:
    """Move the clock to `seconds` after the test started (the offset only grows)."""
    clock.set_offset(seconds)


def personal(world: World, request_id: str) -> dict:
    item = world.item(request_id) or {}
    return {field: item.get(field) for field in RequestItem.PERSONAL_FIELDS}


# ------------------------------------------------------------------ the rules table, end to end


def test_a_code_is_deleted_after_15_minutes(world):
    request_id = world.submit()

    at(15 * 60 - 5)
    assert sweeper.sweep().total("deleted") == 0
    assert world.item(request_id, "CHALLENGE") is not None
    at(15 * 60 + 1)
    report = sweeper.sweep()

    assert report.by_rule[Rule.VERIFICATION_CODE.value]["deleted"] == 1
    assert world.item(request_id, "CHALLENGE") is None
    assert world.item(request_id) is not None, "the request itself has 72 hours"


def test_an_unverified_request_is_deleted_after_72_hours_and_its_expiry_is_on_the_audit_trail(world):
    request_id = world.submit()

    at(72 * HOUR - 5)
    sweeper.sweep()
    assert world.item(request_id) is not None
    at(72 * HOUR + 1)
    report = sweeper.sweep()

    assert report.by_rule[Rule.UNVERIFIED_REQUEST.value]["deleted"] == 1
    assert world.item(request_id) is None and world.item(request_id, "CHALLENGE") is None
    trail = sorted(world.audit(request_id), key=lambda event: event["sk"])
    assert [(e["action"], e.get("to_status")) for e in trail] == [
        ("submitted", "identity_unverified"),
        ("status_changed", "expired"),
    ]
    assert trail[-1]["actor"] == "retention-sweeper"
    with pytest.raises(NotFound):
        submissions.load_request(request_id)


def test_delivered_personal_fields_are_purged_within_the_hour_and_the_skeleton_stays(world):
    request_id, token = world.verified()
    delivered = world.deliver(request_id)
    assert personal(world, request_id) == {"email": EMAIL, "name": NAME, "details": DETAILS}

    at(HOUR - 5)
    assert sweeper.sweep().total("purged") == 0
    at(HOUR)
    request = submissions.load_request(request_id)
    assert queries.personal_fields(request) == {"email": None, "name": None, "details": None}, (
        "reads treat the fields as gone at their purge time, before the sweeper comes"
    )
    report = sweeper.sweep()

    assert report.by_rule[Rule.DELIVERED_SUBJECT_DATA.value]["purged"] == 1
    item = world.item(request_id)
    assert personal(world, request_id) == {"email": None, "name": None, "details": None}
    assert item["status"] == "delivered" and item["request_id"] == request_id
    assert item["personal_purged_at"] and item["purged_by"] == "sweeper"
    # the skeleton now lives by its own rule: three years from verification
    verified_at = clock.parse_iso(item["verified_at"].replace("+0000", "+00:00"))
    assert item["retention_rule"] == Rule.SKELETON.value
    assert int(item["retention_due_at"]) == retention.expires_at(Rule.SKELETON, verified_at)
    assert int(item["expires_at"]) == int(item["retention_due_at"])
    assert submissions.status_view(submissions.authorize(request_id, token))["status"] == "delivered"
    assert delivered <= clock.now()


def test_a_controllers_purge_after_replaces_the_hour(world):
    site = world.controller(purge_after_seconds=10 * 60)
    request_id, _ = world.verified(site)
    world.deliver(request_id, override=timedelta(seconds=10 * 60))

    at(10 * 60 + 1)
    sweeper.sweep()

    assert personal(world, request_id) == {"email": None, "name": None, "details": None}


def test_a_completed_internal_request_is_purged_after_30_days(world):
    site = world.controller(delivery="internal")
    request_id, _ = world.verified(site)
    world.close_internal(request_id)

    at(30 * DAY - 60)
    sweeper.sweep()
    assert personal(world, request_id)["email"] == EMAIL
    at(30 * DAY + 1)
    report = sweeper.sweep()

    assert report.by_rule[Rule.CLOSED_INTERNAL_REQUEST.value]["purged"] == 1
    assert personal(world, request_id) == {"email": None, "name": None, "details": None}
    assert world.item(request_id)["status"] == "completed"


def test_skeletons_go_after_three_years_and_their_audit_events_outlive_them(world):
    request_id, _ = world.verified()
    world.deliver(request_id)
    at(HOUR + 1)
    sweeper.sweep()

    at(3 * 365 * DAY - HOUR)
    sweeper.sweep()
    assert world.item(request_id) is not None
    at(3 * 365 * DAY + 60)
    report = sweeper.sweep()

    assert report.by_rule[Rule.SKELETON.value]["deleted"] == 1
    assert world.item(request_id) is None
    assert world.audit(request_id), "audit events are separate items with their own 3-year TTL"
    assert report.buckets <= 3 * 365 + 2, "one query per day since the last sweep, no more"


# ------------------------------------------------------------------ legal holds


def test_a_held_request_survives_past_its_time_and_goes_after_release(world):
    request_id = world.submit()
    holds.place(request_id, "litigation hold, case 2026-17", actor="operator")
    item = world.item(request_id)
    assert "expires_at" not in item and "gsi2pk" not in item, "neither TTL nor the sweeper can act"
    assert all("expires_at" not in event for event in world.audit(request_id)), "the trail is held too"

    at(10 * DAY)
    sweeper.sweep()
    assert world.item(request_id) is not None
    assert submissions.load_request(request_id).request_id == request_id, "reads show a held item past its time"
    with pytest.raises(Conflict):
        holds.place(request_id, "again", actor="operator")

    holds.release(request_id, actor="operator")
    released = world.item(request_id)
    assert int(released["expires_at"]) == int(released["retention_due_at"]), "TTL back from the rules"
    assert all("expires_at" in event for event in world.audit(request_id))
    report = sweeper.sweep()

    assert report.by_rule[Rule.UNVERIFIED_REQUEST.value]["deleted"] == 1
    assert world.item(request_id) is None
    actions = [event["action"] for event in world.audit(request_id)]
    assert "legal_hold_placed" in actions and "legal_hold_released" in actions
    assert not any("litigation" in str(event) for event in world.audit(request_id)), (
        "the reason stays on the request; the audit trail names no case"
    )


def test_a_hold_placed_after_the_index_was_read_is_skipped_and_reported(world):
    request_id, _ = world.verified()
    world.deliver(request_id)
    # A hold that raced the sweep: the index still lists the item, the item itself is held.
    world.dynamodb.update_item(
        TableName=world.table,
        Key={"pk": {"S": f"REQ#{request_id}"}, "sk": {"S": "REQUEST"}},
        UpdateExpression="SET legal_hold = :hold",
        ExpressionAttributeValues={
            ":hold": {"M": {"reason": {"S": "race"}, "placed_at": {"S": "2026-01-01T00:00:00.000000+0000"}}}
        },
    )
    at(2 * HOUR)
    report = sweeper.sweep()

    assert report.held == [f"REQ#{request_id}|REQUEST"]
    assert report.total("purged") == 0
    assert personal(world, request_id)["email"] == EMAIL


# ------------------------------------------------------------------ robustness


def test_sweeping_twice_is_harmless(world):
    ids = [world.submit() for _ in range(3)]
    at(72 * HOUR + 1)
    first = sweeper.sweep()
    audit_before = {request_id: len(world.audit(request_id)) for request_id in ids}
    second = sweeper.sweep()

    assert first.total("deleted") == 6  # three requests, three codes
    assert second.total("deleted") == 0 and second.total("purged") == 0
    assert {request_id: len(world.audit(request_id)) for request_id in ids} == audit_before


def test_an_interrupted_sweep_finishes_on_the_next_run(world, monkeypatch):
    ids = [world.submit() for _ in range(5)]
    at(15 * 60 + 1)  # five codes due
    real_act, calls = sweeper.act, []

    def failing_after_two(item, action, now, *who):
        if len(calls) == 2:
            raise RuntimeError("injected: the Lambda died here")
        calls.append(item.pk)
        return real_act(item, action, now, *who)

    monkeypatch.setattr(sweeper, "act", failing_after_two)
    with pytest.raises(RuntimeError):
        sweeper.sweep()
    assert sum(world.item(request_id, "CHALLENGE") is None for request_id in ids) == 2
    monkeypatch.setattr(sweeper, "act", real_act)

    report = sweeper.sweep()

    assert report.by_rule[Rule.VERIFICATION_CODE.value]["deleted"] == 3
    assert all(world.item(request_id, "CHALLENGE") is None for request_id in ids)


def test_an_item_limit_stops_a_sweep_that_the_next_one_resumes(world):
    ids = [world.submit() for _ in range(4)]
    at(15 * 60 + 1)

    first = sweeper.sweep(max_items=3)
    second = sweeper.sweep()

    assert first.interrupted == "max_items" and first.total("deleted") == 3
    assert second.total("deleted") == 1 and second.interrupted is None
    assert all(world.item(request_id, "CHALLENGE") is None for request_id in ids)


def test_the_state_moves_past_a_day_only_when_it_is_done(world):
    world.submit()
    at(3 * DAY)
    report = sweeper.sweep()
    state = SweepState.get(SweepState.PK, SweepState.SK, consistent_read=True)

    assert report.swept_through == retention.bucket_start(clock.epoch()) - DAY
    assert int(state.swept_through) == report.swept_through
    assert sweeper.sweep().buckets == 1, "the next sweep reads only today's bucket"


def test_the_dry_run_lists_what_would_go_and_changes_nothing(world):
    unverified = world.submit()
    delivered, _ = world.verified()
    world.deliver(delivered)
    at(72 * HOUR + 1)

    report = sweeper.sweep(dry_run=True)

    assert dict(report.by_rule) == {
        Rule.UNVERIFIED_REQUEST.value: {"delete": 1},
        Rule.VERIFICATION_CODE.value: {"delete": 1},
        Rule.DELIVERED_SUBJECT_DATA.value: {"purge": 1},
    }
    assert {(item["pk"], item["action"]) for item in report.items} >= {
        (f"REQ#{unverified}", "delete"),
        (f"REQ#{delivered}", "purge"),
    }
    assert world.item(unverified) is not None and personal(world, delivered)["email"] == EMAIL
    assert report.swept_through is None


def test_a_sweep_reads_what_expired_not_what_the_table_holds(world, monkeypatch):
    """Items read per sweep, counted from DynamoDB's own answers (a botocore hook), with many
    live items and a few expired ones: the count follows the expired ones only."""
    import pynamodb.connection.base as pynamodb_base

    read = {"items": 0, "calls": {}}

    def count(parsed=None, model=None, **_):
        name = model.name
        read["calls"][name] = read["calls"].get(name, 0) + 1
        if name == "Query":
            read["items"] += len(parsed.get("Items", []))
        elif name == "BatchGetItem":
            read["items"] += sum(len(items) for items in parsed.get("Responses", {}).values())
        elif name == "GetItem":
            read["items"] += 1 if parsed.get("Item") else 0

    shared_session = pynamodb_base.get_session

    def counting_session():
        session = shared_session()
        session.register("after-call.dynamodb", count)
        return session

    monkeypatch.setattr(pynamodb_base, "get_session", counting_session)
    bind_table(world.table)  # new connections, with the hook

    def seed(count_live: int, count_expired: int) -> None:
        now = clock.epoch()
        with RequestItem.batch_write() as batch:
            for n in range(count_live + count_expired):
                due = now + DAY * (1 + n % 30) if n < count_live else now - 60
                pk = f"REQ#bench{n:06d}-{count_live}"
                batch.save(
                    RequestItem(
                        pk,
                        RequestItem.SK,
                        request_id=pk[4:],
                        controller_id="ctl_x",
                        site="x",
                        request_type="access",
                        status="delivered",
                        created_at=clock.now(),
                        email="x@example.org",
                        retention_rule=Rule.DELIVERED_SUBJECT_DATA.value,
                        retention_due_at=due,
                        **retention.expiry_index_keys(due, pk, RequestItem.SK),
                    )
                )

    results = {}
    for live in (200, 2000):
        seed(live, 20)
        read.update(items=0, calls={})
        report = sweeper.sweep()
        results[live] = read["items"]
        assert report.total("purged") == 20
        assert report.items_read == read["items"], "the sweep's own count agrees with DynamoDB's answers"
        assert "Scan" not in read["calls"]

    assert results[200] == results[2000], f"reads grew with the table: {results}"
    assert results[2000] <= 2 * 20 + 1  # index entries + the items themselves + the sweep state


def test_a_sweep_out_of_time_stops_and_the_next_one_does_the_work(world):
    import time

    request_id = world.submit()
    at(20 * DAY)  # twenty empty days to query first

    late = sweeper.sweep(deadline=time.monotonic())
    on_time = sweeper.sweep()

    assert late.interrupted == "deadline" and late.total("deleted") == 0
    assert on_time.by_rule[Rule.UNVERIFIED_REQUEST.value]["deleted"] == 1
    assert world.item(request_id) is None


def test_a_withdrawn_consent_record_goes_after_five_years(world):
    """Item kinds the sweeper has no model for are read by their keys and retention attributes."""
    from rightsdesk.audience import consents
    from rightsdesk.kernel.rights import PURPOSES

    key = {"pk": {"S": "CONTACT#" + "a" * 64}, "sk": {"S": f"CONSENT#{PURPOSES[0]}"}}
    consents.record("a" * 64, PURPOSES[0], consents.WITHDRAWN, source="test")

    at(5 * 365 * DAY - HOUR)
    sweeper.sweep()
    assert "Item" in world.dynamodb.get_item(TableName=world.table, Key=key, ConsistentRead=True)
    at(5 * 365 * DAY + 60)
    report = sweeper.sweep()

    assert report.by_rule[Rule.CONSENT_RECORD.value]["deleted"] == 1
    assert "Item" not in world.dynamodb.get_item(TableName=world.table, Key=key, ConsistentRead=True)
