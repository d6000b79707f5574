"""`rightsdesk --local connectors ...` as an operator runs it against the local run: add a Cognito
pool and a Users table from definition files, list and show them, test their access through
moto's STS, enable one, and remove both; every change on the audit trail with the operator. An S3
connector's removal takes its index with it."""

from __future__ import annotations

import getpass
import json
import uuid

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def stores(stack):
    """The operator's own stores, in the local run's moto: a Cognito pool and a Users table."""
    tag = uuid.uuid4().hex[:8]
    pool_id = stack.client("cognito-idp").create_user_pool(PoolName=f"users-{tag}")["UserPool"]["Id"]
    table = f"Users-{tag}"
    stack.client("dynamodb").create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
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
    stack.client("dynamodb").put_item(TableName=table, Item={"pk": {"S": "USER#1"}, "owner": {"S": "u-1"}})
    return tag, pool_id, table


def test_an_operator_adds_tests_enables_and_removes_connectors(stack, stores, tmp_path, table):
    tag, pool_id, users_table = stores
    pool_cid, users_cid = f"pool-{tag}", f"users-{tag}"
    pool_file = tmp_path / "pool.yaml"
    pool_file.write_text(
        f"kind: cognito\nid: {pool_cid}\n"
        f"role_arn: arn:aws:iam::123456789012:role/rightsdesk-connector-{pool_cid}\n"
        f"user_pool_id: {pool_id}\n"
        "yields:\n  cognito_sub: sub\n  user_id: custom:user_id\n"
    )
    users_file = tmp_path / "users.json"
    users_file.write_text(
        json.dumps(
            {
                "kind": "dynamodb",
                "id": users_cid,
                "role_arn": f"arn:aws:iam::123456789012:role/rightsdesk-connector-{users_cid}",
                "table_name": users_table,
                "partition_key": "pk",
                "lookup": {"identity": "user_id", "attribute": "owner", "index_name": "by-owner"},
            }
        )
    )

    assert stack.cli_json("connectors", "add", "--file", str(pool_file))["connector"]["state"] == "disabled"
    assert stack.cli_json("connectors", "add", "--file", str(users_file))["connector"]["state"] == "disabled"
    listed = stack.cli_json("connectors", "list")
    assert {pool_cid, users_cid} <= {view["connector_id"] for view in listed["connectors"]}
    order = [cid for stage in listed["stages"] for cid in stage]
    assert order.index(pool_cid) < order.index(users_cid)
    shown = stack.cli("connectors", "show", users_cid)
    assert users_table in shown.stdout and "dry" in shown.stdout

    before = stack.client("dynamodb").scan(TableName=users_table)["Items"]
    for cid in (pool_cid, users_cid):
        report = stack.cli_json("connectors", "test", cid)["test"]
        assert report["ok"], report
        assert report["checks"][0] == {"operation": "sts:AssumeRole", "result": "allowed", "code": None}
    assert stack.client("dynamodb").scan(TableName=users_table)["Items"] == before

    assert stack.cli_json("connectors", "enable", users_cid)["connector"]["state"] == "enabled"
    refused = stack.cli("--json", "connectors", "remove", pool_cid, check=False)
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["error"]["code"] == "connector_needed"
    for cid in (users_cid, pool_cid):
        assert stack.cli_json("connectors", "remove", cid)["removed"] is True
    gone = stack.cli("--json", "connectors", "show", users_cid, check=False)
    assert gone.returncode == 1 and json.loads(gone.stdout)["error"]["code"] == "connector_not_found"

    events = table.query(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :a)",
        ExpressionAttributeValues={":pk": f"CONNECTOR#{users_cid}", ":a": "AUDIT#"},
    )["Items"]
    assert sorted(e["action"] for e in events) == ["connector_added", "connector_enabled", "connector_removed"]
    assert {e["operator"]["principal"] for e in events} == {f"local:{getpass.getuser()}"}


def test_removing_an_s3_connector_purges_its_index_and_leaves_anothers(stack, tmp_path, table):
    """Two S3 connectors index one bucket (backfilled with `connectors index`); removing one deletes
    every item of its index, says how many, audits it, and leaves the other's index whole."""
    from boto3.dynamodb.conditions import Attr

    tag = uuid.uuid4().hex[:8]
    bucket, mine, other = f"purge-{tag}", f"chats-{tag}", f"chats-{tag}-other"
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    for n in range(3):
        body = "".join(json.dumps({"email": f"{who}-{tag}@example.org"}) + "\n" for who in (f"p{n}", "shared"))
        s3.put_object(Bucket=bucket, Key=f"chats/{n}.jsonl", Body=body.encode())
    for cid in (mine, other):
        path = tmp_path / f"{cid}.json"
        path.write_text(
            json.dumps(
                {
                    "kind": "s3",
                    "id": cid,
                    "role_arn": f"arn:aws:iam::123456789012:role/rightsdesk-connector-{cid}",
                    "bucket": bucket,
                    "row_files": [
                        {"prefix": "chats/", "format": "jsonl", "field": "email", "identity": "email", "index": True}
                    ],
                }
            )
        )
        stack.cli("connectors", "add", "--file", str(path))
        assert stack.cli_json("connectors", "index", cid)["index"]["objects"] == 3

    def index_items(cid: str) -> list[tuple[str, str]]:
        found, start = [], {}
        while True:
            page = table.scan(FilterExpression=Attr("pk").begins_with(f"S3IDX#{cid}#"), ConsistentRead=True, **start)
            found += [(item["pk"], item["sk"]) for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return sorted(found)
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    theirs = index_items(other)
    assert len(index_items(mine)) == 3 + 6 + 1  # objects, (subject, object) entries, the prefix ready

    removed = stack.cli_json("connectors", "remove", mine)
    assert removed["definition_removed"] is True and removed["index_items_removed"] == 10
    assert removed["index_items"] == {"objects": 3, "entries": 6, "unindexed": 0, "ready": 1}
    assert index_items(mine) == []
    assert index_items(other) == theirs
    events = stack.cli_json("connectors", "history", mine)["events"]
    purged = [e for e in events if e["action"] == "connector_index_purged"]
    assert [e["cause"] for e in purged] == ["objects=3 entries=6 unindexed=0 ready=1"]
    assert purged[0]["operator"]["principal"] == f"local:{getpass.getuser()}"
    people = stack.cli("connectors", "remove", other)
    assert "is removed with 10 S3 index items" in people.stdout
    again = stack.cli("--json", "connectors", "remove", mine, check=False)
    assert again.returncode == 1 and json.loads(again.stdout)["error"]["code"] == "connector_not_found"
