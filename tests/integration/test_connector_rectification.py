"""A rectification of the operator's own data carried out through its connectors, end to end on the
local runner: the subject asks on the operator's site, the request waits in the operator queue, the
operator approves it with the CLI (`requests resolve --approve --name ... --locale ... --field ...`),
the state machine runs in moto with the action `rectify`, the product's table and user pool show the
corrected values, the request completes with a mail that says what was corrected where, and the
receipt verifies offline. The stack is this module's own (connectors are stack-wide)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid

import pytest

from tests.support.flows import wait_for

pytestmark = pytest.mark.integration

SITE = "rectify"
ROLE = "arn:aws:iam::123456789012:role/rightsdesk-connector-{}"
PERSONAL: set[str] = set()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.support.stack import start_stack

    running = start_stack(tmp_path_factory.mktemp("connector-rectification-stack"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def stores(stack, tmp_path_factory) -> dict[str, str]:
    """The operator's site, a product table keyed by email and a user pool, each added, tested and
    enabled with the CLI, each declaring what a subject may have corrected."""
    stack.cli(
        "controllers", "add", "--name", "Rectify Platform", "--site", SITE, "--contact", "privacy@rectify.test",
        "--delivery", "internal", "--id", "ctl_rectify",
    )  # fmt: skip
    stack.client("dynamodb").create_table(
        TableName="RectProfiles",
        KeySchema=[{"AttributeName": "email", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "email", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    pool_id = stack.client("cognito-idp").create_user_pool(
        PoolName="rectify-users", Schema=[{"Name": "plan_name", "AttributeDataType": "String", "Mutable": True}]
    )["UserPool"]["Id"]
    folder = tmp_path_factory.mktemp("connectors")
    definitions = {
        "rect-profiles": {
            "kind": "dynamodb",
            "id": "rect-profiles",
            "role_arn": ROLE.format("rect-profiles"),
            "table_name": "RectProfiles",
            "partition_key": "email",
            "lookup": {"identity": "email", "attribute": "email"},
            "rectifiable": {"name": "display_name", "locale": "lang"},
        },
        "rect-pool": {
            "kind": "cognito",
            "id": "rect-pool",
            "role_arn": ROLE.format("rect-pool"),
            "user_pool_id": pool_id,
            "rectifiable": {"name": "name", "plan": "custom:plan_name"},
        },
    }
    for connector_id, document in definitions.items():
        path = folder / f"{connector_id}.json"
        path.write_text(json.dumps(document))
        stack.cli("connectors", "add", "--file", str(path))
        assert stack.cli_json("connectors", "test", connector_id)["test"]["ok"]
        stack.cli("connectors", "enable", connector_id)
    return {"pool_id": pool_id}


def ask(stack, email: str, name: str) -> tuple[str, str]:
    submitted = stack.post(
        "/v1/requests",
        json={"site": SITE, "type": "rectification", "email": email, "name": name, "details": "my name is misspelt"},
    )
    assert submitted.status_code == 202, submitted.text
    request_id = submitted.json()["request_id"]
    mail = wait_for(
        lambda: next((m for m in stack.outbox() if email in m["to"] and f"/verify/{request_id}" in m["text"]), None),
        "the verification code",
    )
    code = re.search(r"\b(\d{6})\b", mail["text"]).group(1)
    verified = stack.post(f"/v1/requests/{request_id}/verify", json={"code": code})
    assert verified.status_code == 200, verified.text
    return request_id, verified.json()["status_token"]


def request_status(stack, request_id: str, token: str) -> str:
    return stack.get(f"/v1/requests/{request_id}", headers={"Authorization": f"Bearer {token}"}).json()["status"]


def test_an_approved_rectification_reaches_the_products_stores_and_its_receipt_verifies(stack, stores, tmp_path):
    tag = uuid.uuid4().hex[:8]
    email, wrong, right = f"rect-{tag}@example.org", f"Hanna Mistake {tag}", f"Hanna Right {tag}"
    PERSONAL.update({email, right})
    stack.client("dynamodb").put_item(
        TableName="RectProfiles",
        Item={"email": {"S": email}, "display_name": {"S": wrong}, "lang": {"S": "en"}},
    )
    stack.client("cognito-idp").admin_create_user(
        UserPoolId=stores["pool_id"],
        Username=f"user-{tag}",
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "name", "Value": wrong}],
        MessageAction="SUPPRESS",
    )
    request_id, token = ask(stack, email, right)
    wait_for(lambda: request_status(stack, request_id, token) == "in_progress", "the request in the operator queue")
    stack.drain()
    assert request_status(stack, request_id, token) == "in_progress"  # waits for a person

    refused = stack.cli("requests", "resolve", request_id, "--approve", "--field", "shoe_size=42", check=False)
    assert refused.returncode != 0 and "shoe_size" in refused.stdout + refused.stderr
    resolved = stack.cli_json(
        "requests", "resolve", request_id, "--approve", "--locale", "de", "--field", "plan=team"
    )  # fmt: skip
    assert resolved["request"]["status"] == "in_progress"  # until the connectors' run ends

    wait_for(lambda: request_status(stack, request_id, token) == "completed", "the run to complete it", timeout=60)
    profile = stack.client("dynamodb").get_item(TableName="RectProfiles", Key={"email": {"S": email}})["Item"]
    assert (profile["display_name"]["S"], profile["lang"]["S"]) == (right, "de")
    user = stack.client("cognito-idp").admin_get_user(UserPoolId=stores["pool_id"], Username=f"user-{tag}")
    attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    assert (attributes["name"], attributes["custom:plan_name"]) == (right, "team")

    answer = wait_for(
        lambda: next((m for m in stack.outbox() if email in m["to"] and "answered" in m["subject"]), None),
        "the completion mail",
    )
    text = " ".join(answer["text"].split())
    assert "rect-profiles: 1 record corrected" in text and "rect-pool: 1 record corrected" in text, text

    out = tmp_path / "receipt.json"
    shown = stack.cli_json("requests", "receipt", request_id, "--out", str(out))
    assert shown["verification"]["valid"] and shown["verification"]["sealed"]
    bodies = [entry["body"] for entry in shown["receipt"]["entries"]]
    assert {(b["connector"]["id"], b["action"], b["counts"]["rectified"]) for b in bodies[:-1]} == {
        ("rect-profiles", "rectify", 1),
        ("rect-pool", "rectify", 1),
    }
    assert bodies[-1]["summary"]["rectified"] == 2
    key = tmp_path / "key.pem"
    key.write_text(shown["public_key_pem"])
    offline = subprocess.run(
        [sys.executable, "-m", "rightsdesk_cli.receipt_verify", str(out), "--public-key", str(key)],
        capture_output=True,
        text=True,
    )
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert right not in out.read_text()


def test_no_corrected_value_or_address_reached_the_stack_log(stack):
    log = stack.logs()
    assert PERSONAL and not sorted(value for value in PERSONAL if value in log)
