"""`rightsdesk connectors add|list|show|test|enable|disable|remove` against moto in-process: JSON and
YAML definitions from a file or standard input, tables for people, `--json` for scripts, clear
errors with a non-zero exit, and `test` proving access through moto's STS on a real table."""

from __future__ import annotations

import json

import boto3
import pytest
import yaml
from moto import mock_aws
from typer.testing import CliRunner

from rightsdesk.connectors import registry
from rightsdesk.platform import config
from rightsdesk.store.items.connectors import ConnectorItem
from rightsdesk_cli.main import app
from tests.support.aws import moto_cloud

REGION = "eu-central-1"
ACCOUNT = "123456789012"


def pool(cid: str) -> dict:
    return {
        "kind": "cognito",
        "id": cid,
        "role_arn": f"arn:aws:iam::{ACCOUNT}:role/rightsdesk-connector-{cid}",
        "user_pool_id": "eu-central-1_AbCdEf123",
        "yields": {"cognito_sub": "sub", "user_id": "custom:user_id"},
    }


def users(cid: str, table: str = "CliUsers") -> dict:
    return {
        "kind": "dynamodb",
        "id": cid,
        "role_arn": f"arn:aws:iam::{ACCOUNT}:role/rightsdesk-connector-{cid}",
        "table_name": table,
        "partition_key": "pk",
        "lookup": {"identity": "user_id", "attribute": "owner", "index_name": "by-owner"},
    }


@pytest.fixture(scope="module")
def cloud():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        world = moto_cloud(
            patch, "rightsdesk-cli-conn", region=REGION, env={"RIGHTSDESK_STACK": None}, no_scans="no table scans"
        )
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName="CliUsers",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "owner", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-owner",
                    "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield world
    config.reload()


def run(*args: str, stdin: str | None = None):
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, list(args), input=stdin)


def run_json(*args: str, stdin: str | None = None) -> dict:
    result = run("--json", *args, stdin=stdin)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def write(tmp_path, name: str, document: dict) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document) if name.endswith((".yaml", ".yml")) else json.dumps(document))
    return str(path)


@pytest.mark.parametrize("form", ["json-file", "yaml-file", "stdin"])
def test_add_reads_json_yaml_or_stdin_and_stores_the_connector_dry(cloud, tmp_path, form):
    cid = f"pool-{form}"
    document = pool(cid)
    if form == "stdin":
        added = run_json("connectors", "add", stdin=json.dumps(document))
    else:
        path = write(tmp_path, "pool.yaml" if form == "yaml-file" else "pool.json", document)
        added = run_json("connectors", "add", "--file", path)
    view = added["connector"]
    assert (view["connector_id"], view["kind"], view["state"]) == (cid, "cognito", "disabled")
    assert view["runs"].startswith("dry")
    assert view["yields"] == ["cognito_sub", "user_id"]
    assert registry.get(cid).state == "disabled"


def test_list_and_show_print_tables_for_people_and_json_for_scripts(cloud, tmp_path):
    run_json("connectors", "add", "--file", write(tmp_path, "p.json", pool("pool-ls")))
    run_json("connectors", "add", "--file", write(tmp_path, "u.json", users("users-ls")))
    listed = run_json("connectors", "list")
    ids = [view["connector_id"] for view in listed["connectors"]]
    assert {"pool-ls", "users-ls"} <= set(ids)
    order = [cid for stage in listed["stages"] for cid in stage]
    assert order.index("pool-ls") < order.index("users-ls")

    table = run("connectors", "list")
    assert table.exit_code == 0
    assert "users-ls" in table.stdout and "run order:" in table.stdout and "dynamodb" in table.stdout

    shown = run("connectors", "show", "users-ls")
    assert shown.exit_code == 0
    assert "CliUsers" in shown.stdout and "dry (finds and plans, never writes)" in shown.stdout
    assert run_json("connectors", "show", "users-ls")["connector"]["definition"]["table_name"] == "CliUsers"


def test_enable_disable_and_remove_change_the_state_and_name_the_operator(cloud, tmp_path):
    run_json("connectors", "add", "--file", write(tmp_path, "p.json", pool("pool-st")))
    assert run_json("connectors", "enable", "pool-st")["connector"]["state"] == "enabled"
    assert run_json("connectors", "disable", "pool-st")["connector"]["state"] == "disabled"
    assert run_json("connectors", "remove", "pool-st") == {
        "connector_id": "pool-st",
        "removed": True,
        "definition_removed": True,
        "index_items_removed": 0,
        "index_items": {"objects": 0, "entries": 0, "unindexed": 0, "ready": 0},
    }
    gone = run("--json", "connectors", "show", "pool-st")
    assert gone.exit_code == 1
    assert json.loads(gone.stdout)["error"]["code"] == "connector_not_found"
    events = cloud.session.client("dynamodb").query(
        TableName=cloud.tables["RightsTable"],
        KeyConditionExpression="pk = :pk AND begins_with(sk, :a)",
        ExpressionAttributeValues={":pk": {"S": ConnectorItem.key("pool-st")}, ":a": {"S": "AUDIT#"}},
    )["Items"]
    assert sorted(e["action"]["S"] for e in events) == sorted(
        ["connector_added", "connector_enabled", "connector_disabled", "connector_removed"]
    )
    # moto's caller identity: the operator's account and principal, and a hash of the ARN
    assert {e["operator"]["M"]["account"]["S"] for e in events} == {ACCOUNT}
    # the trail outlives the connector
    trail = run_json("connectors", "history", "pool-st")["events"]
    assert [e["action"] for e in trail] == [
        "connector_removed",
        "connector_disabled",
        "connector_enabled",
        "connector_added",
    ]
    assert all(e["operator"]["account"] == ACCOUNT for e in trail)
    people = run("connectors", "history", "pool-st")
    assert people.exit_code == 0 and "connector_enabled" in people.stdout and f"@{ACCOUNT}" in people.stdout


@pytest.mark.parametrize(
    ("setup", "args", "code", "words"),
    [
        (None, ("connectors", "show", "nobody"), "connector_not_found", "no connector nobody"),
        (None, ("connectors", "enable", "nobody"), "connector_not_found", "no connector nobody"),
        ("bad-role", None, "invalid_connector_definition", "role_arn"),
        ("graph", None, "invalid_connector_definition", "no connector yields account_id"),
        ("not-yaml", None, "unreadable", "neither JSON nor YAML"),
        ("duplicate", None, "connector_exists", "pool-duplicate exists already"),
        ("needed", ("connectors", "remove", "pool-needed"), "connector_needed", "users-err"),
    ],
    ids=["show-unknown", "enable-unknown", "bad-role", "graph", "not-yaml", "duplicate", "needed"],
)
def test_errors_are_one_clear_line_and_exit_1(cloud, tmp_path, setup, args, code, words):
    path = tmp_path / "definition.json"
    if setup == "bad-role":
        path.write_text(json.dumps({**pool("pool-bad"), "role_arn": f"arn:aws:iam::{ACCOUNT}:role/Admin"}))
    elif setup == "graph":
        path.write_text(json.dumps({**users("orders-err"), "lookup": {"identity": "account_id", "attribute": "pk"}}))
    elif setup == "not-yaml":
        path.write_text('{"kind": "dynamodb", "id": [unclosed')
    elif setup in ("duplicate", "needed"):
        # only this pool yields member_id, and users-err needs it
        first = pool(f"pool-{setup}")
        if setup == "needed":
            first["yields"] = {"cognito_sub": "sub", "member_id": "custom:member"}
        run_json("connectors", "add", "--file", write(tmp_path, "p.json", first))
        if setup == "needed":
            dependent = users("users-err")
            dependent["lookup"]["identity"] = "member_id"
            run_json("connectors", "add", "--file", write(tmp_path, "u.json", dependent))
        path.write_text(json.dumps(pool(f"pool-{setup}")))
    args = args or ("connectors", "add", "--file", str(path))
    as_json = run("--json", *args)
    assert as_json.exit_code == 1
    error = json.loads(as_json.stdout)["error"]
    assert error["code"] == code and words in error["message"]
    for_people = run(*args)
    assert for_people.exit_code == 1 and "error:" in for_people.output and "Traceback" not in for_people.output


def test_test_proves_access_through_moto_sts_without_changing_data(cloud, tmp_path):
    table = boto3.client("dynamodb", region_name=REGION)
    table.put_item(TableName="CliUsers", Item={"pk": {"S": "USER#9"}, "owner": {"S": "u-9"}})
    run_json("connectors", "add", "--file", write(tmp_path, "p.json", pool("pool-t")))
    run_json("connectors", "add", "--file", write(tmp_path, "u.json", users("users-t")))
    before = table.scan(TableName="CliUsers")["Items"]

    report = run_json("connectors", "test", "users-t")["test"]
    assert report["ok"] is True
    assert [(c["operation"], c["result"]) for c in report["checks"]] == [
        ("sts:AssumeRole", "allowed"),
        ("dynamodb:Query", "allowed"),
        ("dynamodb:GetItem", "allowed"),
        ("dynamodb:DeleteItem", "allowed"),
    ]
    assert table.scan(TableName="CliUsers")["Items"] == before
    people = run("connectors", "test", "users-t")
    assert people.exit_code == 0 and "access proved" in people.stdout


def test_test_exits_1_when_the_store_is_not_reachable(cloud, tmp_path):
    run_json("connectors", "add", "--file", write(tmp_path, "p.json", pool("pool-m")))
    run_json("connectors", "add", "--file", write(tmp_path, "u.json", users("users-m", table="NoSuchTable")))
    result = run("--json", "connectors", "test", "users-m")
    assert result.exit_code == 1
    report = json.loads(result.stdout)["test"]
    assert report["ok"] is False
    assert report["checks"][0] == {"operation": "sts:AssumeRole", "result": "allowed", "code": None}
    assert {c["code"] for c in report["checks"][1:]} == {"ResourceNotFoundException"}
