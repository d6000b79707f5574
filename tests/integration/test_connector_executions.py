"""Requests about the operator's own data carried out through its connectors, end to end on the local
runner: the state machine runs in moto, its tasks reach ConnectorWorkerFunction through the
ConnectorTaskQueue, and the operator works the CLI.

The operator's stores live in the stack's moto: a Cognito pool (email -> sub and user id), a Users
table found through a GSI (user id), and a Sessions table keyed by the email. The stack is this
module's own (connectors are stack-wide, and would change every other module's own-data requests);
its tests run in file order, and its log is checked for personal data at the end.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid

import pytest

from tests.support.flows import wait_for

pytestmark = pytest.mark.integration

SITE = "execs"
ROLE = "arn:aws:iam::123456789012:role/rightsdesk-connector-{}"
BUCKET = "exec-transcripts"
PERSONAL: set[str] = set()
GRACE_SECONDS = 24 * 3600


@pytest.fixture(scope="module")
def calls_path(tmp_path_factory):
    return tmp_path_factory.mktemp("calls") / "calls.jsonl"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, calls_path):
    from tests.support.stack import start_stack

    running = start_stack(
        tmp_path_factory.mktemp("connector-executions-stack"), env={"RIGHTSDESK_LOCAL_RECORD_CALLS": str(calls_path)}
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def stores(stack, tmp_path_factory) -> dict[str, str]:
    """The operator's site and stores, and its three connectors added, tested and enabled with the CLI."""
    stack.cli(
        "controllers", "add", "--name", "Exec Platform", "--site", SITE, "--contact", "privacy@execs.test",
        "--delivery", "internal", "--id", "ctl_execs",
    )  # fmt: skip
    cognito = stack.client("cognito-idp")
    pool_id = cognito.create_user_pool(
        PoolName="execs-users",
        Schema=[{"Name": "user_id", "AttributeDataType": "String", "Mutable": True}],
    )["UserPool"]["Id"]
    dynamodb = stack.client("dynamodb")
    dynamodb.create_table(
        TableName="ExecUsers",
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
    create_sessions_table(stack)
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    folder = tmp_path_factory.mktemp("connectors")
    definitions = {
        "exec-pool": {
            "kind": "cognito",
            "id": "exec-pool",
            "role_arn": ROLE.format("exec-pool"),
            "user_pool_id": pool_id,
            "yields": {"cognito_sub": "sub", "user_id": "custom:user_id"},
        },
        "exec-users": {
            "kind": "dynamodb",
            "id": "exec-users",
            "role_arn": ROLE.format("exec-users"),
            "table_name": "ExecUsers",
            "partition_key": "pk",
            "lookup": {"identity": "user_id", "attribute": "owner", "index_name": "by-owner"},
        },
        "exec-transcripts": {
            "kind": "s3",
            "id": "exec-transcripts",
            "role_arn": ROLE.format("exec-transcripts"),
            "bucket": BUCKET,
            "subject_prefixes": ["users/{user_id}/"],
            "row_files": [{"prefix": "chats/", "format": "jsonl", "field": "user", "identity": "user_id"}],
        },
        "exec-sessions": {
            "kind": "dynamodb",
            "id": "exec-sessions",
            "role_arn": ROLE.format("exec-sessions"),
            "table_name": "ExecSessions",
            "partition_key": "owner_email",
            "sort_key": "sid",
            "lookup": {"identity": "email", "attribute": "owner_email"},
        },
    }
    for connector_id, document in definitions.items():
        path = folder / f"{connector_id}.json"
        path.write_text(json.dumps(document))
        stack.cli("connectors", "add", "--file", str(path))
        assert stack.cli_json("connectors", "test", connector_id)["test"]["ok"]
        stack.cli("connectors", "enable", connector_id)
    return {"pool_id": pool_id}


def create_sessions_table(stack) -> None:
    stack.client("dynamodb").create_table(
        TableName="ExecSessions",
        KeySchema=[{"AttributeName": "owner_email", "KeyType": "HASH"}, {"AttributeName": "sid", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "owner_email", "AttributeType": "S"},
            {"AttributeName": "sid", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def subject(stack, stores: dict[str, str], role: str) -> dict[str, str]:
    """A user of the operator's product: a Cognito user, two Users items and a session."""
    tag = uuid.uuid4().hex[:8]
    email, user_id = f"{role}-{tag}@example.org", f"u-{role}-{tag}"
    PERSONAL.update({email, user_id})
    stack.client("cognito-idp").admin_create_user(
        UserPoolId=stores["pool_id"],
        Username=email,
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "custom:user_id", "Value": user_id}],
    )
    for n in range(2):
        stack.client("dynamodb").put_item(
            TableName="ExecUsers", Item={"pk": {"S": f"USER#{tag}#{n}"}, "owner": {"S": user_id}}
        )
    put_session(stack, email)
    s3 = stack.client("s3")
    for version in ("v1", "v2"):  # two versions: the older one goes too
        s3.put_object(Bucket=BUCKET, Key=f"users/{user_id}/profile.json", Body=json.dumps({"v": version}).encode())
    rows = [{"user": user_id, "text": "hello"}, {"user": f"someone-else-{tag}", "text": "hi"}]
    s3.put_object(Bucket=BUCKET, Key=f"chats/{tag}.jsonl", Body="".join(json.dumps(r) + "\n" for r in rows).encode())
    return {"email": email, "user_id": user_id, "tag": tag}


def put_session(stack, email: str) -> None:
    stack.client("dynamodb").put_item(
        TableName="ExecSessions", Item={"owner_email": {"S": email}, "sid": {"S": "s1"}, "ip": {"S": "192.0.2.7"}}
    )


def held(stack, stores: dict[str, str], person: dict[str, str]) -> dict[str, int]:
    """What the product's stores still hold of the person."""
    users = stack.client("cognito-idp").list_users(UserPoolId=stores["pool_id"], Filter=f'email = "{person["email"]}"')
    items = stack.client("dynamodb").scan(TableName="ExecUsers")["Items"]
    sessions = stack.client("dynamodb").query(
        TableName="ExecSessions",
        KeyConditionExpression="owner_email = :e",
        ExpressionAttributeValues={":e": {"S": person["email"]}},
    )["Items"]
    s3 = stack.client("s3")
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix=f"users/{person['user_id']}/").get("Versions", [])
    transcripts = 0
    for version in s3.list_object_versions(Bucket=BUCKET, Prefix=f"chats/{person['tag']}.jsonl").get("Versions", []):
        body = s3.get_object(Bucket=BUCKET, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
        transcripts += body.decode().count(person["user_id"])
    return {
        "pool": len(users["Users"]),
        "users": sum(1 for item in items if item["owner"]["S"] == person["user_id"]),
        "sessions": len(sessions),
        "files": len(versions),
        "rows": transcripts,
    }


def in_pool(stack, stores: dict[str, str], person: dict[str, str]) -> int:
    users = stack.client("cognito-idp").list_users(UserPoolId=stores["pool_id"], Filter=f'email = "{person["email"]}"')
    return len(users["Users"])


def ask(stack, email: str, kind: str) -> tuple[str, str]:
    """Submit and verify a request on the operator's own site: (request id, status token)."""
    submitted = stack.post("/v1/requests", json={"site": SITE, "type": kind, "email": email})
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


def run_item(stack, request_id: str) -> dict | None:
    """The request's latest run, as stored (ids, states and counts; identities sealed)."""
    items = stack.client("dynamodb").query(
        TableName="rightsdesk-local-RightsTable",
        KeyConditionExpression="pk = :pk AND begins_with(sk, :e)",
        ExpressionAttributeValues={":pk": {"S": f"REQ#{request_id}"}, ":e": {"S": "EXECUTION#"}},
        ScanIndexForward=False,
    )["Items"]
    return items[0] if items else None


def run_status(stack, request_id: str) -> str | None:
    item = run_item(stack, request_id)
    return item["status"]["S"] if item else None


def request_status(stack, request_id: str, token: str) -> str:
    answer = stack.get(f"/v1/requests/{request_id}", headers={"Authorization": f"Bearer {token}"})
    return answer.json()["status"]


def settle(stack) -> None:
    """Every queue handed on and every running execution finished or waiting for a retry."""
    stack.drain()


def test_an_erasure_waits_its_grace_period_then_runs_and_leaves_a_receipt_verified_offline(stack, stores, tmp_path):
    person = subject(stack, stores, "eraser")
    request_id, token = ask(stack, person["email"], "erasure")
    wait_for(lambda: run_status(stack, request_id) == "waiting", "the run to wait out the grace period")
    grace_mail = wait_for(
        lambda: next(
            (m for m in stack.outbox() if person["email"] in m["to"] and "deleted soon" in m["subject"]), None
        ),
        "the grace mail",
    )
    assert f"/status/{request_id}?token=" in grace_mail["text"], "the mail links to the page that cancels it"
    stack.run("ConnectorWorkerFunction")  # not due yet
    settle(stack)
    assert run_status(stack, request_id) == "waiting"
    assert held(stack, stores, person) == {"pool": 1, "users": 2, "sessions": 1, "files": 2, "rows": 1}

    stack.advance_clock(GRACE_SECONDS + 60)
    stack.run("ConnectorWorkerFunction")  # the grace period's end, on the clock
    wait_for(lambda: run_status(stack, request_id) in ("succeeded", "parked"), "the run to end", timeout=60)
    assert run_status(stack, request_id) == "succeeded"
    assert held(stack, stores, person) == {"pool": 0, "users": 0, "sessions": 0, "files": 0, "rows": 0}
    wait_for(lambda: request_status(stack, request_id, token) == "completed", "the request to complete")
    answer = wait_for(
        lambda: next((m for m in stack.outbox() if person["email"] in m["to"] and "answered" in m["subject"]), None),
        "the completion mail",
    )
    text = " ".join(answer["text"].split())
    assert "4 checked" in text and "found 0 left" in text and "35 days" in text, text

    out = tmp_path / "receipt.json"
    shown = stack.cli_json("requests", "receipt", request_id, "--out", str(out))
    assert shown["verification"]["valid"] and shown["verification"]["sealed"]
    assert {e["body"]["connector"]["id"] for e in shown["receipt"]["entries"][:-1]} == {
        "exec-pool",
        "exec-users",
        "exec-sessions",
        "exec-transcripts",
    }
    key = tmp_path / "key.pem"
    key.write_text(shown["public_key_pem"])
    offline = subprocess.run(
        [sys.executable, "-m", "rightsdesk_cli.receipt_verify", str(out), "--public-key", str(key)],
        capture_output=True,
        text=True,
    )
    assert offline.returncode == 0, offline.stdout + offline.stderr
    document = json.loads(out.read_text())
    document["entries"][0]["body"]["counts"]["erased"] += 1
    out.write_text(json.dumps(document))
    tampered = subprocess.run(
        [sys.executable, "-m", "rightsdesk_cli.receipt_verify", str(out), "--public-key", str(key)],
        capture_output=True,
        text=True,
    )
    assert tampered.returncode == 1


def test_a_connector_failing_half_way_parks_and_execute_resumes_without_redoing_the_rest(stack, stores):
    person = subject(stack, stores, "resumer")
    stack.client("dynamodb").delete_table(TableName="ExecSessions")  # the store is down
    request_id, token = ask(stack, person["email"], "erasure")
    wait_for(lambda: run_status(stack, request_id) == "waiting", "the run to wait out the grace period")
    started = stack.cli_json("requests", "execute", request_id)["execution"]  # at once, not after the grace
    assert started["status"] == "running" and started["run"] == 1

    for delay in (30, 120, 600, 1800, 0):  # the worker retries on the clock (backoff), then parks
        settle(stack)
        if run_status(stack, request_id) == "parked":
            break
        stack.advance_past_retry(delay + 1)
    assert run_status(stack, request_id) == "parked"
    parked = run_item(stack, request_id)
    assert parked["reason"]["S"] == "ResourceNotFoundException"
    listed = stack.cli_json("requests", "list", "--route", "internal")
    assert request_id in {r["request_id"] for r in listed["requests"]}, "the operator queue shows it"
    assert in_pool(stack, stores, person) == 0, "the pool, beside the failing sessions table, is done"

    create_sessions_table(stack)  # the operator mends the store
    put_session(stack, person["email"])
    resumed = stack.cli_json("requests", "execute", request_id)["execution"]
    assert resumed["run"] == 2
    wait_for(lambda: run_status(stack, request_id) in ("succeeded", "parked"), "the resumed run to end", timeout=60)
    assert run_status(stack, request_id) == "succeeded"
    assert held(stack, stores, person) == {"pool": 0, "users": 0, "sessions": 0, "files": 0, "rows": 0}
    steps = {
        item["sk"]["S"].removeprefix("EXECSTEP#"): int(item["run"]["N"])
        for item in stack.client("dynamodb").query(
            TableName="rightsdesk-local-RightsTable",
            KeyConditionExpression="pk = :pk AND begins_with(sk, :s)",
            ExpressionAttributeValues={":pk": {"S": f"REQ#{request_id}"}, ":s": {"S": "EXECSTEP#"}},
        )["Items"]
    }
    assert steps == {"exec-users": 1, "exec-transcripts": 1, "exec-pool": 1, "exec-sessions": 2}, (
        "what run 1 finished was not done again"
    )
    wait_for(lambda: request_status(stack, request_id, token) == "completed", "the request to complete")


def test_the_operator_stops_an_erasure_in_its_grace_period(stack, stores):
    person = subject(stack, stores, "stopped")
    request_id, _ = ask(stack, person["email"], "erasure")
    wait_for(lambda: run_status(stack, request_id) == "waiting", "the run to wait out the grace period")
    dry = stack.cli_json("requests", "execute", request_id, "--dry-run")["execution"]
    found = {s["connector_id"]: s["found"] for s in dry["steps"]}
    # the pool's user, the two Users items, the session; the profile's two versions and the transcript
    assert found == {"exec-pool": 1, "exec-sessions": 1, "exec-users": 2, "exec-transcripts": 3}
    assert run_status(stack, request_id) == "waiting", "a dry run writes nothing"

    stopped = stack.cli_json("requests", "stop", request_id)["execution"]
    assert stopped["status"] == "stopped"
    stack.advance_clock(GRACE_SECONDS + 60)
    stack.run("ConnectorWorkerFunction")
    settle(stack)
    assert run_status(stack, request_id) == "stopped"
    assert held(stack, stores, person) == {"pool": 1, "users": 2, "sessions": 1, "files": 2, "rows": 1}


def test_the_subject_cancels_an_erasure_in_its_grace_period(stack, stores):
    person = subject(stack, stores, "changedmind")
    request_id, token = ask(stack, person["email"], "erasure")
    wait_for(lambda: run_status(stack, request_id) == "waiting", "the run to wait out the grace period")

    cancelled = stack.post(f"/v1/requests/{request_id}/cancel", headers={"Authorization": f"Bearer {token}"})

    assert cancelled.status_code == 200, cancelled.text
    assert run_status(stack, request_id) == "stopped"
    assert "sealed_identities" not in run_item(stack, request_id)
    stack.advance_clock(GRACE_SECONDS + 60)
    stack.run("ConnectorWorkerFunction")
    settle(stack)
    assert run_status(stack, request_id) == "stopped"
    assert held(stack, stores, person) == {"pool": 1, "users": 2, "sessions": 1, "files": 2, "rows": 1}


def test_an_access_request_exports_each_connectors_records_as_a_section(stack, stores):
    person = subject(stack, stores, "reader")
    request_id, token = ask(stack, person["email"], "access")
    wait_for(lambda: request_status(stack, request_id, token) == "completed", "the access request to complete")
    document = stack.get(f"/v1/requests/{request_id}/export", headers={"Authorization": f"Bearer {token}"}).json()
    sections = {s["connector_id"]: s for s in document["sources"]}  # export.schema.json names them sources
    assert set(sections) == {"exec-pool", "exec-users", "exec-sessions", "exec-transcripts"}
    assert len(sections["exec-users"]["records"]) == 2
    assert person["email"] in json.dumps(sections["exec-pool"]["records"])
    assert held(stack, stores, person) == {"pool": 1, "users": 2, "sessions": 1, "files": 2, "rows": 1}, (
        "an export erases nothing"
    )


def test_an_erasure_takes_the_connectors_exports_of_earlier_requests_with_it(stack, stores):
    person = subject(stack, stores, "exported")
    access_id, access_token = ask(stack, person["email"], "access")
    wait_for(lambda: request_status(stack, access_id, access_token) == "completed", "the access request")
    assert len(export_parts(stack, access_id)) == 4

    erasure_id, erasure_token = ask(stack, person["email"], "erasure")
    wait_for(lambda: run_status(stack, erasure_id) == "waiting", "the run to wait out the grace period")
    stack.cli_json("requests", "execute", erasure_id)
    wait_for(lambda: request_status(stack, erasure_id, erasure_token) == "completed", "the erasure")

    assert export_parts(stack, access_id) == []
    assert held(stack, stores, person) == {"pool": 0, "users": 0, "sessions": 0, "files": 0, "rows": 0}


def export_parts(stack, request_id: str) -> list[dict]:
    return stack.client("dynamodb").query(
        TableName="rightsdesk-local-RightsTable",
        KeyConditionExpression="pk = :pk AND begins_with(sk, :e)",
        ExpressionAttributeValues={":pk": {"S": f"REQ#{request_id}"}, ":e": {"S": "EXPORTPART#"}},
    )["Items"]


def test_no_identity_reached_the_stack_log(stack):
    log = stack.logs()
    leaked = sorted(value for value in PERSONAL if value in log)
    assert not leaked


def test_every_table_and_sealing_call_of_a_run_is_granted_to_its_function(stack, calls_path):
    """The worker's and OwnRequestsFunction's narrow statements cover what the runs above did."""
    from local.template import read as read_template
    from tests.integration.test_granted_calls import TEMPLATE, allowed

    template = read_template(TEMPLATE)
    calls = [json.loads(line) for line in calls_path.read_text().splitlines()]
    assert {"ConnectorWorkerFunction", "OwnRequestsFunction"} <= {call["function"] for call in calls}
    assert any(c["function"] == "ConnectorWorkerFunction" and c.get("purpose") == "execution_identities" for c in calls)
    refused = sorted(
        {
            json.dumps({k: call.get(k) for k in ("function", "service", "action", "resource", "index", "purpose")})
            for call in calls
            if call["service"] in ("dynamodb", "kms")
            and call["action"] in ({"Encrypt", "Decrypt"} if call["service"] == "kms" else {call["action"]})
            and call["resource"] != "ExecUsers"  # the product's own stores, reached through assumed roles
            and call["resource"] != "ExecSessions"
            and not allowed(template, call)
        }
    )
    assert not refused, "calls the template does not allow:\n" + "\n".join(refused)
