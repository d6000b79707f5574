"""The DynamoDB connector against moto: key and GSI lookups, the three erase modes, conditional
writes, idempotence, the ceiling, the scan cap, and outcomes without personal data."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from rightsdesk.connectors import base, build
from rightsdesk.connectors.access import assumed_role_session, session_name
from rightsdesk.connectors.definitions import DefinitionError, parse_definition
from tests.support.denied import deny

ROLE = "arn:aws:iam::123456789012:role/rightsdesk-connector-users"
REQUEST = "req_dynamo_1"


@pytest.fixture
def aws():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-central-1")
        client.create_table(
            TableName="Users",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "owner", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-owner",
                    "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def put(client, pk: str, sk: str, **attributes: str) -> None:
    item = {"pk": {"S": pk}, "sk": {"S": sk}, **{k: {"S": v} for k, v in attributes.items()}}
    client.put_item(TableName="Users", Item=item)


def definition(**overrides):
    document = {
        "kind": "dynamodb",
        "id": "users-table",
        "role_arn": ROLE,
        "enabled": True,
        "table_name": "Users",
        "partition_key": "pk",
        "sort_key": "sk",
        "lookup": {"identity": "user_id", "attribute": "owner", "index_name": "by-owner"},
        "yields": {"account_id": "account"},
    }
    document.update(overrides)
    return parse_definition(document)


def connector(**overrides):
    return build(definition(**overrides), REQUEST, session_factory=assumed_role_session)


def subject_world(client, user: str = "u-1", items: int = 3) -> None:
    for n in range(items):
        put(client, f"ITEM#{user}#{n}", "v0", owner=user, note=f"{user} note {n}", account="acct-7")
    put(client, "ITEM#other", "v0", owner="u-2", note="someone else", account="acct-9")


def test_a_gsi_lookup_finds_the_subjects_items_in_full_and_yields_their_account(aws):
    subject_world(aws)
    found = connector().find({"user_id": "u-1"})
    assert found.count == 3
    # KEYS_ONLY projection: the items come from the table itself
    assert {record.data["note"] for record in found.records} == {f"u-1 note {n}" for n in range(3)}
    assert found.derived == {"account_id": ("acct-7",)}
    assert connector().export(found)[0]["owner"] == "u-1"


def test_a_lookup_on_the_table_key_is_a_query(aws):
    put(aws, "USER#u-1", "profile", name="Ada")
    put(aws, "USER#u-1", "settings", theme="dark")
    put(aws, "USER#u-2", "profile", name="Bob")
    table_key = connector(lookup={"identity": "user_id", "attribute": "pk", "value_format": "USER#{value}"})
    found = table_key.find({"user_id": "u-1"})
    assert sorted(record.data["sk"] for record in found.records) == ["profile", "settings"]


@pytest.mark.parametrize(
    ("erase", "left_behind"),
    [
        ({"mode": "delete_item"}, None),
        ({"mode": "remove_attributes", "attributes": ["note", "owner"]}, {"note": None, "owner": None}),
        ({"mode": "overwrite_attributes", "attributes": ["note"]}, {"note": "[erased]", "owner": "u-1"}),
    ],
)
def test_erase_then_verify_finds_nothing_and_a_second_erase_is_harmless(aws, erase, left_behind):
    subject_world(aws)
    subject = connector(erase=erase)
    outcome = base.erase_and_verify(subject, {"user_id": "u-1"})
    assert (outcome.result, outcome.found, outcome.erased, outcome.remaining) == ("done", 3, 3, 0)
    item = aws.get_item(TableName="Users", Key={"pk": {"S": "ITEM#u-1#0"}, "sk": {"S": "v0"}}).get("Item")
    if left_behind is None:
        assert item is None
    else:
        for name, value in left_behind.items():
            assert (item.get(name) or {}).get("S") == value
    # someone else's item is untouched
    other = aws.get_item(TableName="Users", Key={"pk": {"S": "ITEM#other"}, "sk": {"S": "v0"}})["Item"]
    assert other["note"]["S"] == "someone else"
    again = base.erase_and_verify(subject, {"user_id": "u-1"})
    assert (again.result, again.found, again.remaining) == ("nothing_found", 0, 0)


def test_erasing_the_same_find_twice_counts_the_second_as_already_gone(aws):
    subject_world(aws)
    subject = connector()
    found = subject.find({"user_id": "u-1"})
    assert subject.erase(found).erased == 3
    second = subject.erase(found)
    assert (second.erased, second.already_gone, second.changed_hands) == (0, 3, 0)


def test_an_item_that_changed_hands_between_find_and_erase_is_left_alone(aws):
    subject_world(aws, items=2)
    subject = connector()
    found = subject.find({"user_id": "u-1"})
    put(aws, "ITEM#u-1#1", "v0", owner="u-3", note="now u-3's")  # the conditional write must refuse
    erased = subject.erase(found)
    assert (erased.erased, erased.changed_hands) == (1, 1)
    assert (
        aws.get_item(TableName="Users", Key={"pk": {"S": "ITEM#u-1#1"}, "sk": {"S": "v0"}})["Item"]["note"]["S"]
        == "now u-3's"
    )


def test_more_records_than_the_ceiling_park_and_nothing_is_erased(aws):
    subject_world(aws, items=4)
    outcome = base.erase_and_verify(connector(ceiling=3), {"user_id": "u-1"})
    assert (outcome.result, outcome.erased, outcome.remaining) == ("parked_too_many", 0, None)
    assert connector().find({"user_id": "u-1"}).count == 4


def test_a_connector_not_enabled_runs_dry(aws):
    subject_world(aws)
    outcome = base.erase_and_verify(connector(enabled=False), {"user_id": "u-1"})
    assert (outcome.action, outcome.dry_run, outcome.found, outcome.erased) == ("find", True, 3, 0)
    assert connector().find({"user_id": "u-1"}).count == 3


def test_pages_are_followed(aws):
    for n in range(30):
        put(aws, "USER#u-1", f"event#{n:03}", blob="x" * 40_000)  # ~1.2 MB: several query pages
    table_key = connector(lookup={"identity": "user_id", "attribute": "pk", "value_format": "USER#{value}"})
    assert table_key.find({"user_id": "u-1"}).count == 30


def test_a_scan_is_allowed_only_when_declared_and_stops_at_its_cap(aws):
    with pytest.raises(DefinitionError):
        definition(lookup={"identity": "user_id", "attribute": "note"})
    subject_world(aws, items=3)
    scanning = connector(lookup={"identity": "user_id", "attribute": "owner", "allow_scan": True}, scan_item_cap=10)
    assert scanning.find({"user_id": "u-1"}).count == 3
    too_small = connector(lookup={"identity": "user_id", "attribute": "owner", "allow_scan": True}, scan_item_cap=2)
    outcome, _ = base.plan(too_small, {"user_id": "u-1"})
    assert (outcome.result, outcome.failure) == ("failed", {"code": "scan_cap_exceeded"})


def test_an_unreachable_table_is_a_failed_outcome_with_the_aws_code_only(aws):
    outcome = base.erase_and_verify(connector(table_name="Missing"), {"user_id": "u-1"})
    assert outcome.result == "failed"
    assert outcome.failure == {"code": "ResourceNotFoundException"}


def test_outcomes_hold_keyed_hashes_only(aws):
    subject_world(aws, user="ada@example.com")
    outcome = base.erase_and_verify(connector(), {"user_id": "ada@example.com"})
    text = outcome.to_json()
    assert outcome.found == 3 and len(outcome.touched) == 3
    for secret in ("ada@example.com", "ITEM#", "acct-7", "note"):
        assert secret not in text
    assert outcome.identities == {"user_id": base.identity_hash("user_id", "ada@example.com")}
    assert outcome.role_arn == ROLE


def test_the_session_is_the_assumed_role_named_for_rightsdesk_and_the_request(aws):
    session = assumed_role_session(definition(), "req_abc/1")
    identity = session.client("sts").get_caller_identity()
    assert identity["Arn"].endswith("assumed-role/rightsdesk-connector-users/rightsdesk-req_abc-1")
    assert session_name("r" * 100).startswith("rightsdesk-") and len(session_name("r" * 100)) == 64


def test_definitions_round_trip_through_a_dict():
    original = definition(erase={"mode": "remove_attributes", "attributes": ["note"]})
    stored = json.loads(json.dumps(original.to_dict()))
    assert parse_definition(stored) == original
    assert stored["yields"] == {"account_id": "account"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"role_arn": "arn:aws:iam::123456789012:role/admin"}, "role_arn"),
        ({"role_arn": None}, "role_arn"),
        ({"ceiling": 0}, "ceiling"),
        ({"erase": {"mode": "remove_attributes"}}, "definition"),
        ({"erase": {"mode": "remove_attributes", "attributes": ["pk"]}}, "definition"),
        ({"lookup": {"identity": "user_id", "attribute": "owner", "value_format": "X"}}, "lookup.value_format"),
        ({"secret": "x"}, "secret"),
    ],
)
def test_invalid_definitions_name_the_field(overrides, field):
    with pytest.raises(DefinitionError) as error:
        definition(**overrides)
    assert field in error.value.fields


def test_an_export_returns_the_records_and_an_outcome_that_only_counts_them(aws):
    subject_world(aws, items=2)
    outcome, records = base.export_records(connector(export_attributes=["note"]), {"user_id": "u-1"})
    assert sorted(records, key=lambda r: r["note"]) == [{"note": "u-1 note 0"}, {"note": "u-1 note 1"}]
    assert (outcome.action, outcome.result, outcome.found) == ("export", "done", 2)
    assert "note" not in outcome.to_json()


def _calls_to_erase(client, others: int) -> dict[str, int]:
    """API calls for a whole erasure (find, erase, verify) of a subject with 20 items, in a table
    that also holds `others` items of other people."""
    for start in range(0, others, 25):
        client.batch_write_item(
            RequestItems={
                "Users": [
                    {
                        "PutRequest": {
                            "Item": {"pk": {"S": f"ITEM#o{n}"}, "sk": {"S": "v0"}, "owner": {"S": f"o-{n % 97}"}}
                        }
                    }
                    for n in range(start, min(start + 25, others))
                ]
            }
        )
    subject_world(client, user=f"u-{others}", items=20)
    calls: dict[str, int] = {}
    subject = connector()
    subject.client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.__setitem__(model.name, calls.get(model.name, 0) + 1)
    )
    outcome = base.erase_and_verify(subject, {"user_id": f"u-{others}"})
    assert (outcome.result, outcome.erased, outcome.remaining) == ("done", 20, 0)
    return calls


def test_the_calls_of_an_erasure_follow_the_subjects_items_not_the_table(aws):
    small = _calls_to_erase(aws, 50)
    large = _calls_to_erase(aws, 2000)
    assert small == large == {"Query": 2, "GetItem": 20, "DeleteItem": 20}


@pytest.mark.parametrize("kind", ["ftp", None])
def test_an_unknown_kind_is_named_without_repeating_it(kind):
    with pytest.raises(DefinitionError) as error:
        parse_definition({"kind": kind} if kind else {})
    assert error.value.fields == {"kind": "kind must be one of dynamodb, s3, cognito, http"}


@pytest.mark.parametrize(
    ("erase", "write"),
    [
        ({"mode": "delete_item"}, "dynamodb:DeleteItem"),
        ({"mode": "remove_attributes", "attributes": ["note"]}, "dynamodb:UpdateItem"),
    ],
)
def test_a_probe_proves_each_permission_and_changes_nothing(aws, erase, write):
    subject_world(aws)
    before = aws.scan(TableName="Users")["Items"]
    subject = connector(erase=erase)
    assert [(c.operation, c.result) for c in subject.probe()] == [
        ("dynamodb:Query", "allowed"),
        ("dynamodb:GetItem", "allowed"),
        (write, "allowed"),
    ]
    assert aws.scan(TableName="Users")["Items"] == before
    deny(subject.client, write.split(":")[1])
    assert subject.probe()[-1] == base.Check(write, "denied", "AccessDeniedException")
