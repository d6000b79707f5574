"""`rightsdesk --local connectors ...` as an operator runs it against the local run: add a Cognito
pool and a Users table from definition files, list and show them, test their access through
moto's STS, enable one, and remove both; every change on the audit trail with the operator."""

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
