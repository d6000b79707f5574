"""Tenant scoping against moto in-process: two controllers' tenants hold the same user id in one
table and one bucket; a run for tenant A finds, erases and verifies A's records only, and B's stay
byte for byte. A tenant-scoped definition that does not use {tenant_id} is refused."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from rightsdesk.connectors import base, build, identity_graph
from rightsdesk.connectors.definitions import DefinitionError, parse_definition

REGION = "eu-central-1"
ROLE = "arn:aws:iam::123456789012:role/rightsdesk-connector-tenants"
TABLE, BUCKET = "Tenants", "tenant-files"
TENANTS = ("ctl-a", "ctl-b")
USER = "u-1"  # the same user id in both tenants


@pytest.fixture
def aws():
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "user", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-user",
                    "KeySchema": [{"AttributeName": "user", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield dynamodb, s3


def dynamo_items(client) -> None:
    for tenant in TENANTS:
        for n in range(2):
            # keyed by tenant and user: the lookup key holds the tenant
            client.put_item(
                TableName=TABLE,
                Item={"pk": {"S": f"T#{tenant}#U#{USER}"}, "sk": {"S": f"note#{n}"}, "note": {"S": f"{tenant} {n}"}},
            )
            # found through a GSI on the user alone: a tenant attribute filters
            client.put_item(
                TableName=TABLE,
                Item={
                    "pk": {"S": f"ORDER#{tenant}#{n}"},
                    "sk": {"S": "v"},
                    "user": {"S": USER},
                    "tenant": {"S": tenant},
                },
            )


def s3_objects(client) -> None:
    for tenant in TENANTS:
        client.put_object(Bucket=BUCKET, Key=f"tenants/{tenant}/users/{USER}/profile.json", Body=b"{}")
        rows = "".join(json.dumps({"user": user, "tenant": tenant}) + "\n" for user in (USER, "u-2"))
        client.put_object(Bucket=BUCKET, Key=f"chats/{tenant}/day-1.jsonl", Body=rows.encode())


DEFINITIONS = {
    "dynamodb key": (
        {
            "kind": "dynamodb",
            "table_name": TABLE,
            "partition_key": "pk",
            "sort_key": "sk",
            "lookup": {"identity": "user_id", "attribute": "pk", "value_format": "T#{tenant_id}#U#{value}"},
        },
        2,
    ),
    "dynamodb gsi with tenant filter": (
        {
            "kind": "dynamodb",
            "table_name": TABLE,
            "partition_key": "pk",
            "sort_key": "sk",
            "lookup": {"identity": "user_id", "attribute": "user", "index_name": "by-user"},
            "tenant_filter": {"attribute": "tenant"},
        },
        2,
    ),
    "dynamodb scan with tenant filter": (
        {
            "kind": "dynamodb",
            "table_name": TABLE,
            "partition_key": "pk",
            "sort_key": "sk",
            "lookup": {"identity": "user_id", "attribute": "user", "allow_scan": True},
            "tenant_filter": {"attribute": "tenant"},
        },
        2,
    ),
    "s3 prefix": (
        {"kind": "s3", "bucket": BUCKET, "subject_prefixes": ["tenants/{tenant_id}/users/{user_id}/"]},
        1,
    ),
    "s3 row files": (
        {
            "kind": "s3",
            "bucket": BUCKET,
            "row_files": [{"prefix": "chats/{tenant_id}/", "format": "jsonl", "field": "user", "identity": "user_id"}],
        },
        1,
    ),
}


def connector(document: dict):
    definition = parse_definition(
        {"id": "tenant-store", "role_arn": ROLE, "enabled": True, "tenant_scoped": True, **document}
    )
    return build(definition, "req_tenant", session_factory=lambda d, r: boto3.session.Session(region_name=REGION))


def snapshot(aws) -> dict[str, str]:
    """Everything of tenant B, as stored."""
    dynamodb, s3 = aws
    items = dynamodb.scan(TableName=TABLE)["Items"]
    theirs = {json.dumps(item, sort_keys=True): "" for item in items if "ctl-b" in json.dumps(item)}
    for version in s3.list_object_versions(Bucket=BUCKET).get("Versions", []):
        if "/ctl-b/" in version["Key"]:
            body = s3.get_object(Bucket=BUCKET, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
            theirs[version["Key"] + "@" + version["VersionId"]] = body.decode()
    return theirs


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_a_run_for_one_tenant_never_reaches_the_other(aws, name):
    dynamo_items(aws[0])
    s3_objects(aws[1])
    document, expected = DEFINITIONS[name]
    subject = connector(document)
    before = snapshot(aws)
    assert before  # tenant B has data in the same store
    seeds = {"user_id": USER, "tenant_id": "ctl-a"}
    found = subject.find(seeds)
    assert found.count == expected
    for record in found.records:
        assert "ctl-b" not in record.key and "ctl-b" not in json.dumps(record.data or {})
    outcome = base.erase_and_verify(subject, seeds)
    assert (outcome.result, outcome.remaining) == ("done", 0)
    assert snapshot(aws) == before  # B's records, every version, untouched
    # B's own run still finds B's records
    assert subject.find({"user_id": USER, "tenant_id": "ctl-b"}).count == expected


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_without_a_tenant_id_a_tenant_scoped_connector_finds_nothing(aws, name):
    dynamo_items(aws[0])
    s3_objects(aws[1])
    subject = connector(DEFINITIONS[name][0])
    assert subject.find({"user_id": USER}).count == 0
    empty, _ = base.plan(subject, {"user_id": USER, "tenant_id": ""})  # found nothing, or refused the value
    assert empty.found == 0 and empty.result in ("nothing_found", "failed")


def test_a_tenant_id_that_tries_to_climb_out_of_its_prefix_is_refused(aws):
    subject = connector(DEFINITIONS["s3 prefix"][0])
    outcome, _ = base.plan(subject, {"user_id": USER, "tenant_id": "ctl-a/../ctl-b"})
    assert (outcome.result, outcome.failure) == ("failed", {"code": "unsafe_identity_value"})


REFUSED = {
    "dynamodb without {tenant_id}": {
        "kind": "dynamodb",
        "table_name": TABLE,
        "partition_key": "pk",
        "lookup": {"identity": "user_id", "attribute": "pk"},
    },
    "s3 with one prefix unscoped": {
        "kind": "s3",
        "bucket": BUCKET,
        "subject_prefixes": ["tenants/{tenant_id}/users/{user_id}/", "avatars/{user_id}/"],
    },
    "s3 row files unscoped": {
        "kind": "s3",
        "bucket": BUCKET,
        "row_files": [{"prefix": "chats/", "format": "jsonl", "field": "user", "identity": "user_id"}],
    },
    "cognito": {"kind": "cognito", "user_pool_id": "eu-central-1_Abc123"},
    "http without tenant_id": {
        "kind": "http",
        "url": "https://product.example/rightsdesk",
        "needs": ["user_id"],
        "signing_secret_arn": "arn:aws:secretsmanager:eu-central-1:123456789012:secret:hook-AbCdEf",
    },
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_tenant_scoped_definition_must_use_the_tenant_id(name):
    document = {"id": "tenant-store", "role_arn": ROLE, "tenant_scoped": True, **REFUSED[name]}
    if document["kind"] == "http":
        document.pop("role_arn")
    with pytest.raises(DefinitionError):
        parse_definition(document)


@pytest.mark.parametrize(
    "document",
    [
        DEFINITIONS["dynamodb key"][0],
        DEFINITIONS["s3 prefix"][0],
        {**DEFINITIONS["dynamodb gsi with tenant filter"][0]},
    ],
)
def test_the_tenant_placeholder_needs_the_flag(document):
    with pytest.raises(DefinitionError):
        parse_definition({"id": "tenant-store", "role_arn": ROLE, **document})


def test_a_tenant_scoped_connector_needs_the_seed_tenant_id_and_the_graph_accepts_it():
    definition = parse_definition(
        {"id": "tenant-store", "role_arn": ROLE, "tenant_scoped": True, **DEFINITIONS["s3 prefix"][0]}
    )
    assert definition.needs == {"tenant_id", "user_id"}
    assert "tenant_id" in identity_graph.SEEDS


@pytest.mark.parametrize("name", ["dynamodb key", "dynamodb gsi with tenant filter"])
def test_a_probe_of_a_tenant_scoped_table_really_reads_it(aws, name, monkeypatch):
    subject = connector(DEFINITIONS[name][0])
    calls = []
    original = subject.client._make_api_call

    def counting(operation, params):
        calls.append(operation)
        return original(operation, params)

    monkeypatch.setattr(subject.client, "_make_api_call", counting)
    checks = subject.probe()
    assert checks[0].result == "allowed" and "Query" in calls, "the lookup was exercised, not skipped"
