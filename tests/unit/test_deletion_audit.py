"""DeletionAuditFunction: stream records, filtered by the template's FilterCriteria, become one
audit event per deletion or purge with the right cause, and nothing personal.

moto's stream records carry no `userIdentity`, and moto never expires items: a TTL deletion is
simulated as a REMOVE record given DynamoDB's service principal (tests/support/retention_world.py).
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from local.patterns import any_match, parse_filters
from local.template import event_sources
from rightsdesk.intake import submissions
from rightsdesk.kernel import clock
from rightsdesk.retention import holds, sweeper
from rightsdesk.store import deletion
from rightsdesk.store.deletion import Cause
from rightsdesk_cli.main import app as cli
from tests.support.aws import load_template
from tests.support.retention_world import DETAILS, EMAIL, NAME, World, as_ttl_deletion, world_in_moto

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600


class Context:
    function_name = "DeletionAuditFunction"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:DeletionAuditFunction"
    aws_request_id = "test"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def _load_handler():
    spec = importlib.util.spec_from_file_location("_deletion_audit_app", ROOT / "functions/deletion_audit/app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def world():
    with world_in_moto() as made:
        yield made


@pytest.fixture(scope="module")
def handler():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POWERTOOLS_METRICS_NAMESPACE", "rightsdesk")
        patch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        yield _load_handler()


def stream_filters() -> list[dict]:
    properties = event_sources(load_template(), "DeletionAuditFunction")["TableStream"]["Properties"]
    return parse_filters(properties["FilterCriteria"])


def deliver(handler, records: list[dict]) -> list[dict]:
    """What Lambda would do: filter with the template's criteria, invoke with what passes."""
    passing = [record for record in records if any_match(stream_filters(), record)]
    if passing:
        answer = handler.lambda_handler({"Records": passing}, Context())
        assert answer == {"batchItemFailures": []}
    return passing


def deletion_events(world: World, request_id: str) -> list[dict]:
    return [e for e in world.audit(request_id) if e["action"] in (deletion.DELETED, deletion.PURGED)]


def test_every_deletion_and_purge_gets_one_event_naming_its_cause(world, handler):
    expired = world.submit()
    delivered, _ = world.verified()  # its code is deleted on use: an unmarked, "direct" REMOVE
    world.deliver(delivered)
    cancelled, token = world.verified()
    submissions.cancel(cancelled, token)
    clock.set_offset(72 * HOUR + 1)
    sweeper.sweep()

    passing = deliver(handler, world.stream_records())

    assert all(not r["dynamodb"]["Keys"]["sk"]["S"].startswith("AUDIT#") for r in passing), (
        "audit events never trigger the handler"
    )
    assert {(e["item_kind"], e["action"], e["cause"], e.get("rule")) for e in deletion_events(world, expired)} == {
        ("CHALLENGE", "deleted", "sweeper", "verification_code"),
        ("REQUEST", "deleted", "sweeper", "unverified_request"),
    }
    assert {(e["item_kind"], e["action"], e["cause"], e.get("rule")) for e in deletion_events(world, delivered)} == {
        ("CHALLENGE", "deleted", "direct", None),
        ("REQUEST", "personal_data_purged", "sweeper", "delivered_subject_data"),
    }
    assert {(e["item_kind"], e["action"], e["cause"]) for e in deletion_events(world, cancelled)} >= {
        ("REQUEST", "personal_data_purged", "erasure"),
    }
    request_event = next(e for e in deletion_events(world, expired) if e["item_kind"] == "REQUEST")
    assert request_event["from_status"] == "identity_unverified"
    assert request_event["actor"] == "retention-sweeper"
    assert request_event["gsi1pk"].startswith("AUDIT#20")


def test_a_ttl_deletion_is_recorded_as_ttl(world, handler):
    request_id = world.submit()
    world.skip_stream()
    # What DynamoDB's TTL does days after expiry: a plain delete, by the service principal.
    world.dynamodb.delete_item(TableName=world.table, Key={"pk": {"S": f"REQ#{request_id}"}, "sk": {"S": "REQUEST"}})
    records = [as_ttl_deletion(record) for record in world.stream_records()]

    deliver(handler, records)

    [event] = deletion_events(world, request_id)
    assert (event["cause"], event["actor"], event["rule"]) == ("ttl", "dynamodb-ttl", "unverified_request")


def test_a_delete_by_hand_is_recorded_but_not_as_ttl(world, handler):
    request_id = world.submit()
    world.skip_stream()
    world.dynamodb.delete_item(TableName=world.table, Key={"pk": {"S": f"REQ#{request_id}"}, "sk": {"S": "REQUEST"}})

    deliver(handler, world.stream_records())

    [event] = deletion_events(world, request_id)
    assert event["cause"] == "direct"


def test_an_erasure_is_recorded_as_erasure_and_a_hold_refuses_it(world, handler):
    erased, held = world.submit(), world.submit()
    holds.place(held, "audit by the authority", actor="operator")
    world.skip_stream()

    assert deletion.erase(submissions.load_request(erased))
    assert not deletion.erase(submissions.load_request(held)), "a legal hold blocks every deletion but the table's own"
    deliver(handler, world.stream_records())

    assert [e["cause"] for e in deletion_events(world, erased)] == ["erasure"]
    assert deletion_events(world, held) == []


def test_a_retried_batch_records_nothing_twice(world, handler):
    world.submit()
    clock.set_offset(16 * 60)
    sweeper.sweep()
    records = world.stream_records()

    first = deliver(handler, records)
    second = deliver(handler, records)

    assert first and second
    events = [r for r in world.stream_records() if r["eventName"] == "INSERT"]
    assert len(events) == 1, "the replay's conditional put wrote nothing"


def test_audit_events_hold_no_personal_data(world, handler):
    request_id, _ = world.verified()
    world.deliver(request_id)
    clock.set_offset(HOUR + 1)
    sweeper.sweep()
    deliver(handler, world.stream_records())

    stored = json.dumps(world.audit(request_id), default=str)
    for value in (EMAIL, NAME, DETAILS):
        assert value not in stored


def test_marks_and_audit_event_writes_do_not_reach_the_handler():
    filters = stream_filters()
    mark = {
        "eventName": "MODIFY",
        "dynamodb": {
            "Keys": {"pk": {"S": "REQ#x"}, "sk": {"S": "REQUEST"}},
            "OldImage": {"retention_rule": {"S": "skeleton"}},
            "NewImage": {"retention_rule": {"S": "skeleton"}, "deleted_by": {"S": "sweeper"}},
        },
    }
    repurge = {
        "eventName": "MODIFY",
        "dynamodb": {"OldImage": {"personal_purged_at": {"S": "t"}}, "NewImage": {"personal_purged_at": {"S": "t"}}},
    }
    audit_ttl = {
        "eventName": "REMOVE",
        "dynamodb": {
            "Keys": {"pk": {"S": "REQ#x"}, "sk": {"S": "AUDIT#2026"}},
            "OldImage": {"action": {"S": "deleted"}},
        },
    }
    insert = {"eventName": "INSERT", "dynamodb": {"NewImage": {"retention_rule": {"S": "skeleton"}}}}
    for record in (mark, repurge, audit_ttl, insert):
        assert not any_match(filters, record), record


def test_the_audit_query_lists_deletions_by_cause_and_period_without_a_scan(world, handler, monkeypatch):
    from pynamodb.connection import Connection

    ids = [world.submit() for _ in range(2)]
    clock.set_offset(72 * HOUR + 1)
    sweeper.sweep()
    ttl_victim = world.submit()
    world.dynamodb.delete_item(TableName=world.table, Key={"pk": {"S": f"REQ#{ttl_victim}"}, "sk": {"S": "CHALLENGE"}})
    records = world.stream_records()
    deliver(
        handler,
        [
            as_ttl_deletion(r) if r["eventName"] == "REMOVE" and ttl_victim in r["dynamodb"]["Keys"]["pk"]["S"] else r
            for r in records
        ],
    )
    monkeypatch.setattr(Connection, "scan", lambda *a, **k: pytest.fail("the audit query scanned"))
    since = datetime.fromtimestamp(clock.epoch() - 4 * 24 * HOUR, timezone.utc)

    swept = list(deletion.events(since, cause=Cause.SWEEPER))
    ttl = list(deletion.events(since, cause=Cause.TTL))

    assert {e.pk for e in swept} == {f"REQ#{i}" for i in ids}
    assert len(swept) == 4  # two requests, two codes
    assert [e.pk for e in ttl] == [f"REQ#{ttl_victim}"]
    long_before = datetime.fromtimestamp(clock.epoch() - 10 * 24 * HOUR, timezone.utc)
    assert list(deletion.events(long_before, long_before + (since - long_before) / 2)) == []

    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        cli, ["--json", "retention", "audit", "--since", since.strftime("%Y-%m-%d"), "--cause", "sweeper"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["totals"] == {"deleted:sweeper": 4}
    assert {row["record"] for row in data["events"]} == {f"REQ#{i}" for i in ids}


def test_months_of_a_period():
    start = datetime(2025, 11, 30, tzinfo=timezone.utc)
    assert deletion.months(start, datetime(2026, 2, 1, tzinfo=timezone.utc)) == [
        "AUDIT#2025-11",
        "AUDIT#2025-12",
        "AUDIT#2026-01",
        "AUDIT#2026-02",
    ]


def test_the_sample_events_are_understood(handler, world):
    samples = sorted((ROOT / "events" / "deletion_audit").glob("*.json"))
    assert samples
    for sample in samples:
        event = json.loads(sample.read_text())
        for record in event["Records"]:
            record["eventID"] = uuid.uuid4().hex  # fresh ids: each sample writes its own event
        change = handler.change_of(handler.DynamoDBRecord(event["Records"][0]))
        assert change is not None, sample.name
        assert deletion.cause_of(change).value in sample.stem, f"{sample.name} names its cause"


def test_the_ttl_principal_wins_over_a_stale_mark():
    change = deletion.Change(
        kind=deletion.DELETED,
        pk="REQ#x",
        sk="REQUEST",
        event_id="e",
        by_ttl_service=True,
        old={"deleted_by": "sweeper", "retention_rule": "skeleton"},
    )
    assert deletion.cause_of(change) is Cause.TTL
    unmarked = deletion.Change(kind=deletion.DELETED, pk="REQ#x", sk="REQUEST", event_id="e")
    assert deletion.cause_of(unmarked) is Cause.DIRECT
