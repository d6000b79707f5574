"""The connectors' three other ways in, end to end on the local runner (real HTTP, moto server, the
state machine running in moto, its tasks answered by ConnectorWorkerFunction):

- rightsdesk as a controller's **processor**: a webhook controller and its tenant, the platform's
  tenant-scoped DynamoDB table and S3 bucket holding the same user id in two tenants; the controller
  has a delivered erasure carried out there (`POST /v1/controller/requests/{id}/execute`), gets
  `dsr.request.executed`, fetches the receipt and verifies it offline; the other tenant's records
  stay byte for byte;
- a **legal exception** (Art. 17(3)): the operator's own erasure keeps an invoice its connector
  declares, the receipt names the basis and the period, and the worker's schedule erases it once
  the period ends, appending to the receipt;
- a **lifecycle** erasure: an account the product reported on the bus is cancelled, the next
  lifecycle run opens the erasure, which skips the grace period and erases the account's records
  through a connector that finds them by `user_id`.

Connectors are stack-wide, so the stack is this module's own; its tests run in file order, the
clock only moving forward, and end with the personal-data and IAM checks over what they did.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest

from tests.support.flows import Flow, wait_for
from tests.support.openapi import event_problems

pytestmark = pytest.mark.integration

OPERATOR_SITE = "platform"  # the template's LifecycleSite: the lifecycle opens its erasures there
ROLE = "arn:aws:iam::123456789012:role/rightsdesk-connector-{}"
TABLE = "rightsdesk-local-RightsTable"
TENANT_TABLE, TENANT_BUCKET = "TenantRecords", "tenant-files"
BILLING_TABLE, ACTIVITY_TABLE = "OwnBilling", "OwnActivity"
PRODUCT_TABLES = frozenset({TENANT_TABLE, BILLING_TABLE, ACTIVITY_TABLE})
GRACE_SECONDS = 24 * 3600
KEEP_DAYS = 90
KEEP_BASIS = "Card-scheme chargeback window: invoices kept for disputes"
PERSONAL: set[str] = set()
STATE: dict = {}


@pytest.fixture(scope="module")
def calls_path(tmp_path_factory):
    return tmp_path_factory.mktemp("calls") / "calls.jsonl"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, calls_path):
    from tests.support.openapi import check_every_answer, controller_openapi, public_openapi
    from tests.support.stack import start_stack

    running = start_stack(
        tmp_path_factory.mktemp("processor-lifecycle-stack"), env={"RIGHTSDESK_LOCAL_RECORD_CALLS": str(calls_path)}
    )
    running.restore_clock_after_each_test = False  # one story: the kept records' period, the lifecycle
    # every API answer here is what the OpenAPI documents say (closed schemas)
    check_every_answer(running.http, running.base_url, controller_openapi(), public_openapi())
    yield running
    running.stop()


@pytest.fixture(scope="module")
def stores(stack, tmp_path_factory) -> None:
    """The platform's stores and the operator's connectors, added, tested and enabled with the CLI."""
    stack.cli(
        "controllers", "add", "--name", "The Platform", "--site", OPERATOR_SITE, "--contact", "privacy@platform.test",
        "--delivery", "internal", "--id", "ctl_e2e_platform",
    )  # fmt: skip
    dynamodb = stack.client("dynamodb")
    dynamodb.create_table(
        TableName=TENANT_TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName=BILLING_TABLE,
        KeySchema=[{"AttributeName": "owner_email", "KeyType": "HASH"}, {"AttributeName": "sid", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "owner_email", "AttributeType": "S"},
            {"AttributeName": "sid", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName=ACTIVITY_TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "user_id", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-user",
                "KeySchema": [{"AttributeName": "user_id", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=TENANT_BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    s3.put_bucket_versioning(Bucket=TENANT_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    definitions = {
        # the platform's stores, holding many controllers' data: acting within one tenant only
        "tenant-records": {
            "kind": "dynamodb",
            "id": "tenant-records",
            "role_arn": ROLE.format("tenant-records"),
            "tenant_scoped": True,
            "table_name": TENANT_TABLE,
            "partition_key": "pk",
            "sort_key": "sk",
            "lookup": {"identity": "user_id", "attribute": "pk", "value_format": "T#{tenant_id}#U#{value}"},
        },
        "tenant-files": {
            "kind": "s3",
            "id": "tenant-files",
            "role_arn": ROLE.format("tenant-files"),
            "tenant_scoped": True,
            "bucket": TENANT_BUCKET,
            "subject_prefixes": ["tenants/{tenant_id}/users/{user_id}/"],
            "row_files": [{"prefix": "chats/{tenant_id}/", "format": "jsonl", "field": "user", "identity": "user_id"}],
        },
        # the operator's own account data: billing (found by the email, yields the user id; invoices
        # kept for a legal basis) and activity (found by the user id)
        "own-billing": {
            "kind": "dynamodb",
            "id": "own-billing",
            "role_arn": ROLE.format("own-billing"),
            "table_name": BILLING_TABLE,
            "partition_key": "owner_email",
            "sort_key": "sid",
            "lookup": {"identity": "email", "attribute": "owner_email"},
            "yields": {"user_id": "user_id"},
            "keep": [
                {"basis": KEEP_BASIS, "period_days": KEEP_DAYS, "match": {"attribute": "doc", "equals": "invoice"}}
            ],
        },
        "own-activity": {
            "kind": "dynamodb",
            "id": "own-activity",
            "role_arn": ROLE.format("own-activity"),
            "table_name": ACTIVITY_TABLE,
            "partition_key": "pk",
            "lookup": {"identity": "user_id", "attribute": "user_id", "index_name": "by-user"},
        },
    }
    folder = tmp_path_factory.mktemp("connectors")
    for connector_id, document in definitions.items():
        path = folder / f"{connector_id}.json"
        path.write_text(json.dumps(document))
        stack.cli("connectors", "add", "--file", str(path))
        assert stack.cli_json("connectors", "test", connector_id)["test"]["ok"]
        stack.cli("connectors", "enable", connector_id)


# ------------------------------------------------------------------ reading the stores


def run_items(stack, request_id: str) -> list[dict]:
    """The request's runs, newest first (ids, states and counts; identities sealed)."""
    return stack.client("dynamodb").query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :e)",
        ExpressionAttributeValues={":pk": {"S": f"REQ#{request_id}"}, ":e": {"S": "EXECUTION#"}},
        ScanIndexForward=False,
        ConsistentRead=True,
    )["Items"]


def run_status(stack, request_id: str) -> str | None:
    items = run_items(stack, request_id)
    return items[0]["status"]["S"] if items else None


def request_item(stack, request_id: str) -> dict:
    return stack.client("dynamodb").get_item(
        TableName=TABLE, Key={"pk": {"S": f"REQ#{request_id}"}, "sk": {"S": "REQUEST"}}, ConsistentRead=True
    )["Item"]


def tenant_items(stack, tenant: str) -> list[dict]:
    items = stack.client("dynamodb").scan(TableName=TENANT_TABLE, ConsistentRead=True)["Items"]
    return sorted((i for i in items if i["pk"]["S"].startswith(f"T#{tenant}#")), key=lambda i: i["sk"]["S"])


def tenant_objects(stack, tenant: str) -> list[tuple[str, str, bool, bytes]]:
    """Every version (and delete marker) under the tenant's prefixes: key, version, latest, body."""
    s3 = stack.client("s3")
    found = []
    for prefix in (f"tenants/{tenant}/", f"chats/{tenant}/"):
        listed = s3.list_object_versions(Bucket=TENANT_BUCKET, Prefix=prefix)
        for version in listed.get("Versions", []):
            body = s3.get_object(Bucket=TENANT_BUCKET, Key=version["Key"], VersionId=version["VersionId"])["Body"]
            found.append((version["Key"], version["VersionId"], version["IsLatest"], body.read()))
        for marker in listed.get("DeleteMarkers", []):
            found.append((marker["Key"], marker["VersionId"], marker["IsLatest"], b"<delete marker>"))
    return sorted(found)


def tenant_snapshot(stack, tenant: str) -> dict:
    return {"items": tenant_items(stack, tenant), "objects": tenant_objects(stack, tenant)}


def put_tenant_data(stack, tenant: str, user_id: str, tag: str) -> None:
    """A tenant's records of one user: two items, a profile in two versions, a chat transcript row."""
    for sk in ("profile", "order-1"):
        stack.client("dynamodb").put_item(
            TableName=TENANT_TABLE,
            Item={"pk": {"S": f"T#{tenant}#U#{user_id}"}, "sk": {"S": sk}, "tenant": {"S": tenant}},
        )
    s3 = stack.client("s3")
    for version in ("v1", "v2"):
        s3.put_object(
            Bucket=TENANT_BUCKET,
            Key=f"tenants/{tenant}/users/{user_id}/profile.json",
            Body=json.dumps({"v": version}).encode(),
        )
    rows = [{"user": user_id, "text": "hello"}, {"user": f"someone-else-{tag}", "text": "hi"}]
    s3.put_object(
        Bucket=TENANT_BUCKET,
        Key=f"chats/{tenant}/{tag}.jsonl",
        Body="".join(json.dumps(r) + "\n" for r in rows).encode(),
    )


def held_in_tenant(stack, tenant: str, user_id: str) -> dict[str, int]:
    """What the platform's stores still hold of the user in that tenant (every S3 version read)."""
    objects = tenant_objects(stack, tenant)
    files = [body for key, _, _, body in objects if key.startswith(f"tenants/{tenant}/users/{user_id}/")]
    return {
        "items": sum(1 for item in tenant_items(stack, tenant) if item["pk"]["S"] == f"T#{tenant}#U#{user_id}"),
        "files": sum(1 for body in files if body != b"<delete marker>"),
        "rows": sum(body.decode().count(user_id) for key, _, _, body in objects if key.startswith(f"chats/{tenant}/")),
    }


def verify_offline(tmp_path, document: dict, public_key_pem: str) -> subprocess.CompletedProcess:
    receipt, key = tmp_path / "receipt.json", tmp_path / "key.pem"
    receipt.write_text(json.dumps(document))
    key.write_text(public_key_pem)
    return subprocess.run(
        [sys.executable, "-m", "rightsdesk_cli.receipt_verify", str(receipt), "--public-key", str(key)],
        capture_output=True,
        text=True,
    )


def public_key(stack, request_id: str) -> str:
    """The receipt signing key's public half, as the operator publishes it (`requests receipt`)."""
    return stack.cli_json("requests", "receipt", request_id)["public_key_pem"]


def connector_entries(receipt: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for entry in receipt["entries"]:
        if entry["body"].get("entry") == "connector":
            found.setdefault(entry["body"]["connector"]["id"], []).append(entry["body"])
    return found


# ------------------------------------------------------------------ rightsdesk as a controller's processor


def test_a_controllers_erasure_is_carried_out_in_its_tenant_only_and_its_receipt_verifies(stack, stores, tmp_path):
    from tests.support.stack import deliveries_to, register_controller

    shop, other = register_controller(stack, tag="tenant-a"), register_controller(stack, tag="tenant-b")
    tenants = {shop.controller_id: f"tn-a-{uuid.uuid4().hex[:6]}", other.controller_id: f"tn-b-{uuid.uuid4().hex[:6]}"}
    for controller_id, tenant in tenants.items():
        shown = stack.cli_json("controllers", "set-tenant", controller_id, "--tenant-id", tenant)
        assert shown["controller"]["tenant_id"] == tenant
    mine, theirs = tenants[shop.controller_id], tenants[other.controller_id]
    user_id, tag = f"u-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:6]  # one user id, known in both tenants
    PERSONAL.add(user_id)
    put_tenant_data(stack, mine, user_id, tag)
    put_tenant_data(stack, theirs, user_id, tag)
    before = tenant_snapshot(stack, theirs)
    assert held_in_tenant(stack, mine, user_id) == {"items": 2, "files": 2, "rows": 1}

    subject = Flow(stack, site=shop.site).submit_and_verify(type="erasure")
    PERSONAL.add(subject["email"])
    request_id = subject["request_id"]
    wait_for(lambda: request_item(stack, request_id)["status"]["S"] == "delivered", "the webhook delivery")

    path = f"/v1/controller/requests/{request_id}/execute"
    body = {"identities": {"user_id": user_id}}
    refused = stack.post(path, json=body, headers=other.auth)
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "not_found"), refused.text
    assert stack.post(path, json=body, headers={"Authorization": "Bearer rk_not-a-key"}).status_code == 401
    assert run_items(stack, request_id) == [], "nothing started for a stranger"

    with ThreadPoolExecutor(2) as pool:  # asked twice at once (a retry crossing the first ask)
        both = list(pool.map(lambda _: stack.post(path, json=body, headers=shop.auth), range(2)))
    assert sorted(a.status_code for a in both)[0] == 202 and {a.status_code for a in both} <= {202, 409}
    first = next(a for a in both if a.status_code == 202)
    again = stack.post(path, json=body, headers=shop.auth)
    assert again.status_code == 202 and first.json()["execution_id"] == again.json()["execution_id"]
    assert first.json()["dry_run"] is False and user_id not in first.text + again.text
    assert len(run_items(stack, request_id)) == 1, "asking twice starts one run"

    wait_for(lambda: run_status(stack, request_id) in ("succeeded", "parked"), "the run to end", timeout=60)
    assert run_status(stack, request_id) == "succeeded", run_items(stack, request_id)[0].get("reason")
    assert held_in_tenant(stack, mine, user_id) == {"items": 0, "files": 0, "rows": 0}
    assert tenant_snapshot(stack, theirs) == before, "the other tenant's records are untouched, byte for byte"

    [event] = wait_for(lambda: deliveries_to(stack, shop, "dsr.request.executed"), "dsr.request.executed")
    assert event_problems(event["body"]) == []
    data = event["body"]["data"]
    assert (data["request_id"], data["controller_id"], data["status"], data["result"]) == (
        request_id, shop.controller_id, "succeeded", "done",
    )  # fmt: skip
    assert {c["connector_id"]: c["erased"] for c in data["connectors"]} == {"tenant-records": 2, "tenant-files": 3}
    assert data["receipt"]["sealed"] and data["summary"]["remaining"] == 0
    assert not deliveries_to(stack, other, "dsr.request.executed"), "the other controller hears nothing"

    receipt = stack.get(f"/v1/controller/requests/{request_id}/receipt", headers=shop.auth)
    assert receipt.status_code == 200, receipt.text
    document = receipt.json()
    assert document["head"]["hash"] == data["receipt"]["head"], "the chain ends where the event says"
    assert set(connector_entries(document)) == {"tenant-records", "tenant-files"}, "the tenant's connectors only"
    offline = verify_offline(tmp_path, document, public_key(stack, request_id))
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert stack.get(f"/v1/controller/requests/{request_id}/receipt", headers=other.auth).status_code == 404

    third = stack.post(path, json=body, headers=shop.auth)  # once it succeeded: answered, nothing more
    assert third.status_code == 202 and third.json()["execution_id"] == first.json()["execution_id"]
    assert len(run_items(stack, request_id)) == 1
    machine = stack.client("stepfunctions")
    [arn] = [m["stateMachineArn"] for m in machine.list_state_machines()["stateMachines"]]
    runs = [e for e in machine.list_executions(stateMachineArn=arn)["executions"] if request_id in e["name"]]
    assert len(runs) == 1, "one state machine execution"

    logged = stack.get("/v1/controller/deliveries", headers=shop.auth)
    assert logged.status_code == 200
    assert {"dsr.request.forwarded", "dsr.request.executed"} <= {d["event_type"] for d in logged.json()["deliveries"]}
    for identity in (user_id, subject["email"]):
        assert identity not in logged.text and identity not in json.dumps(event["body"]), "no identity in the log"
    STATE.update(processor_request=request_id, processor_auth=shop.auth)


def test_a_controllers_execution_takes_no_dry_run(stack, stores):
    """A plan's finds would run in the controller API's own function, with every connector's role."""
    request_id = STATE["processor_request"]
    items = run_items(stack, request_id)
    answer = stack.post(
        f"/v1/controller/requests/{request_id}/execute",
        json={"identities": {"user_id": "u-x"}, "dry_run": True},
        headers=STATE["processor_auth"],
    )
    assert answer.status_code == 422 and "dry_run" in answer.json()["error"]["fields"], answer.text
    assert run_items(stack, request_id) == items


# ------------------------------------------------------------------ a legal exception (Art. 17(3))


def ask_own(stack, email: str, kind: str = "erasure") -> dict:
    return Flow(stack, site=OPERATOR_SITE).submit_and_verify(email, type=kind)


def billing_items(stack, email: str) -> dict[str, dict]:
    found = stack.client("dynamodb").query(
        TableName=BILLING_TABLE,
        KeyConditionExpression="owner_email = :e",
        ExpressionAttributeValues={":e": {"S": email}},
        ConsistentRead=True,
    )["Items"]
    return {item["sid"]["S"]: item for item in found}


def activity_items(stack, user_id: str) -> list[dict]:
    items = stack.client("dynamodb").scan(TableName=ACTIVITY_TABLE, ConsistentRead=True)["Items"]
    return [item for item in items if item["user_id"]["S"] == user_id]


def test_the_operators_erasure_keeps_an_invoice_for_its_legal_basis_and_names_it_in_the_receipt(
    stack, stores, tmp_path
):
    email, user_id = f"buyer-{uuid.uuid4().hex[:8]}@example.org", f"u-buyer-{uuid.uuid4().hex[:8]}"
    PERSONAL.update({email, user_id})
    dynamodb = stack.client("dynamodb")
    for sid, doc in (("invoice-2026-001", "invoice"), ("preferences", "preferences")):
        dynamodb.put_item(
            TableName=BILLING_TABLE,
            Item={"owner_email": {"S": email}, "sid": {"S": sid}, "doc": {"S": doc}, "user_id": {"S": user_id}},
        )
    dynamodb.put_item(TableName=ACTIVITY_TABLE, Item={"pk": {"S": f"A#{user_id}#1"}, "user_id": {"S": user_id}})
    # the same user id in a tenant: the operator's own run never reaches a tenant's records
    tenant = f"tn-own-{uuid.uuid4().hex[:6]}"
    put_tenant_data(stack, tenant, user_id, uuid.uuid4().hex[:6])
    tenant_before = tenant_snapshot(stack, tenant)

    subject = ask_own(stack, email)
    request_id, token = subject["request_id"], subject["status_token"]
    wait_for(lambda: run_status(stack, request_id) == "waiting", "the run to wait out the grace period")
    stack.advance_clock(GRACE_SECONDS + 60)
    stack.run("ConnectorWorkerFunction")
    wait_for(lambda: run_status(stack, request_id) in ("succeeded", "parked"), "the run to end", timeout=60)
    assert run_status(stack, request_id) == "succeeded", run_items(stack, request_id)[0].get("reason")
    assert set(billing_items(stack, email)) == {"invoice-2026-001"}, "the invoice is kept, the rest erased"
    assert activity_items(stack, user_id) == []
    assert tenant_snapshot(stack, tenant) == tenant_before
    status = lambda: stack.get(f"/v1/requests/{request_id}", headers={"Authorization": f"Bearer {token}"})  # noqa: E731
    wait_for(lambda: status().json()["status"] == "completed", "the request to complete")

    shown = stack.cli_json("requests", "receipt", request_id)
    assert shown["verification"]["valid"] and shown["verification"]["sealed"]
    [billing] = connector_entries(shown["receipt"])["own-billing"]
    assert (billing["result"], billing["counts"]["erased"], billing["counts"]["kept"]) == ("done", 1, 1)
    exception = billing["legal_exception"]  # one basis (several would be listed in legal_exceptions)
    assert (exception["basis"], exception["period_days"], exception["kept"]) == (KEEP_BASIS, KEEP_DAYS, 1)
    keep_until = datetime.fromisoformat(exception["keep_until"].replace("Z", "+00:00"))
    offline = verify_offline(tmp_path, shown["receipt"], shown["public_key_pem"])
    assert offline.returncode == 0, offline.stdout + offline.stderr
    STATE.update(
        kept_request=request_id, kept_email=email, keep_until=keep_until, kept_entries=len(shown["receipt"]["entries"])
    )


def stack_now(stack) -> datetime:
    return datetime.fromtimestamp(time.time() + stack.clock()["offset_seconds"], timezone.utc)


def test_the_kept_invoice_is_erased_by_the_workers_schedule_once_its_period_ends(stack, stores, tmp_path):
    request_id, email = STATE["kept_request"], STATE["kept_email"]
    stack.advance_clock((STATE["keep_until"] - stack_now(stack)).total_seconds() - 3600)
    answer = stack.run("ConnectorWorkerFunction")  # an hour before the period ends
    assert answer["result"]["kept_records_erased"] == 0
    assert set(billing_items(stack, email)) == {"invoice-2026-001"}

    stack.advance_clock(2 * 3600)
    answer = stack.run("ConnectorWorkerFunction")
    assert answer["result"]["kept_records_erased"] == 1
    assert billing_items(stack, email) == {}

    shown = stack.cli_json("requests", "receipt", request_id)
    assert shown["verification"]["valid"] and shown["verification"]["sealed"]
    assert len(shown["receipt"]["entries"]) > STATE["kept_entries"], "appended to the same receipt"
    later = connector_entries(shown["receipt"])["own-billing"][-1]
    assert (later["result"], later["counts"]["erased"], later["counts"]["kept"], later["remaining"]) == (
        "done",
        1,
        0,
        0,
    )
    offline = verify_offline(tmp_path, shown["receipt"], shown["public_key_pem"])
    assert offline.returncode == 0, offline.stdout + offline.stderr


# ------------------------------------------------------------------ a lifecycle erasure


def account_bus(stack) -> str:
    [name] = [
        b["Name"] for b in stack.client("events").list_event_buses()["EventBuses"] if b["Name"].endswith("-accounts")
    ]
    return name


def put_account_event(stack, detail_type: str, detail: dict) -> None:
    answer = stack.client("events").put_events(
        Entries=[
            {
                "EventBusName": account_bus(stack),
                "Source": "rightsdesk.product",
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0


def account_item(stack, account_id: str) -> dict | None:
    return (
        stack.client("dynamodb")
        .get_item(
            TableName=TABLE, Key={"pk": {"S": f"ACCOUNT#{account_id}"}, "sk": {"S": "ACCOUNT"}}, ConsistentRead=True
        )
        .get("Item")
    )


def lifecycle_requests(stack) -> list[dict]:
    items = stack.client("dynamodb").scan(
        TableName=TABLE,
        FilterExpression="sk = :s AND request_type = :t AND controller_id = :c",
        ExpressionAttributeValues={":s": {"S": "REQUEST"}, ":t": {"S": "erasure"}, ":c": {"S": "ctl_e2e_platform"}},
        ConsistentRead=True,
    )["Items"]
    return items


def test_a_cancelled_account_is_erased_through_the_connectors_without_a_grace_period(stack, stores, tmp_path):
    account_id = f"acct-{uuid.uuid4().hex[:8]}"
    email, user_id = f"holder-{account_id}@example.org", f"u-{account_id}"
    PERSONAL.update({email, user_id})
    for n in range(3):
        stack.client("dynamodb").put_item(
            TableName=ACTIVITY_TABLE, Item={"pk": {"S": f"A#{user_id}#{n}"}, "user_id": {"S": user_id}}
        )
    put_account_event(
        stack, "Account Activity", {"account_id": account_id, "email": email, "identities": {"user_id": user_id}}
    )
    wait_for(lambda: account_item(stack, account_id), "the account recorded")
    known = {item["request_id"]["S"] for item in lifecycle_requests(stack)}
    put_account_event(stack, "Account Cancelled", {"account_id": account_id})
    wait_for(
        lambda: (account_item(stack, account_id) or {}).get("state", {}).get("S") == "cancelled", "the cancellation"
    )

    answer = stack.run("LifecycleFunction")
    assert answer["result"]["counts"].get("erasure_opened") == 1, answer
    [request] = wait_for(
        lambda: [i for i in lifecycle_requests(stack) if i["request_id"]["S"] not in known] or None,
        "the erasure opened",
    )
    request_id = request["request_id"]["S"]
    wait_for(lambda: run_status(stack, request_id) in ("succeeded", "parked"), "the run to end", timeout=60)
    first = run_items(stack, request_id)[-1]
    assert "not_before" not in first, "no grace period for a cancellation: the run started at once"
    assert not [m for m in stack.outbox() if email in m["to"] and "deleted soon" in m["subject"]], "no grace mail"
    assert run_status(stack, request_id) == "succeeded", run_items(stack, request_id)[0].get("reason")
    assert activity_items(stack, user_id) == []
    assert account_item(stack, account_id) is None
    wait_for(lambda: request_item(stack, request_id)["status"]["S"] == "completed", "the request to complete")

    shown = stack.cli_json("requests", "receipt", request_id)
    assert shown["verification"]["valid"] and shown["verification"]["sealed"]
    [activity] = connector_entries(shown["receipt"])["own-activity"]
    assert (activity["result"], activity["counts"]["erased"], activity["remaining"]) == ("done", 3, 0)
    offline = verify_offline(tmp_path, shown["receipt"], shown["public_key_pem"])
    assert offline.returncode == 0, offline.stdout + offline.stderr


# ------------------------------------------------------------------ what all of that left behind


def test_no_identity_reached_the_stack_log(stack):
    log = stack.logs()
    leaked = sorted(value for value in PERSONAL if value in log)
    assert not leaked


def test_every_call_of_these_runs_is_granted_to_its_function(stack, calls_path):
    """Moto enforces no IAM: the DynamoDB and direct KMS calls recorded here against the functions'
    statements; and the controller API reached neither a connector's role nor a product store."""
    from local.template import read as read_template
    from tests.integration.test_granted_calls import TEMPLATE, allowed

    template = read_template(TEMPLATE)
    calls = [json.loads(line) for line in calls_path.read_text().splitlines()]
    assert {"ControllerApiFunction", "ConnectorWorkerFunction", "LifecycleFunction"} <= {c["function"] for c in calls}
    refused = sorted(
        {
            json.dumps({k: call.get(k) for k in ("function", "service", "action", "resource", "index", "purpose")})
            for call in calls
            if call["service"] in ("dynamodb", "kms")
            and call["action"] in ({"Encrypt", "Decrypt"} if call["service"] == "kms" else {call["action"]})
            and call["resource"] not in PRODUCT_TABLES  # the product's own stores, reached through assumed roles
            and not allowed(template, call)
        }
    )
    assert not refused, "calls the template does not allow:\n" + "\n".join(refused)
    api = [c for c in calls if c["function"] == "ControllerApiFunction"]
    assert not [c for c in api if c["service"] == "sts" or c["resource"] in PRODUCT_TABLES | {TENANT_BUCKET}]
    assert {(c["service"], c["action"]) for c in api if c["service"] == "stepfunctions"} == {
        ("stepfunctions", "StartExecution")
    }
