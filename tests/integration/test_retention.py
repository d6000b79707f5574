"""Retention through the local runner over real HTTP: the injectable clock (/_dev/clock), the sweep
(POST /_dev/run/RetentionFunction), the dispatcher's real delivery to the demo webhook receiver,
and DeletionAuditFunction fed by the runner's stream poller.

These tests move the clock by years, so they run on a stack of their own (`launch_stack`); in this
module the clock only moves forward and each test creates the requests it needs.

Not here: a real TTL deletion, which moto never performs; the TTL case sends the REMOVE record
DynamoDB would emit (service principal and all) to DeletionAuditFunction directly.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid

import pytest
from boto3.dynamodb.conditions import Key
from boto3.dynamodb.types import TypeSerializer

from tests.support.flows import eventually
from tests.support.stack import REPO, MotoSession

pytestmark = pytest.mark.integration

MINUTE, HOUR, DAY = 60, 3600, 24 * 3600
SENT_PERSONAL: list[str] = []


@pytest.fixture(scope="module")
def rstack(launch_stack):
    running = launch_stack()
    running.restore_clock_after_each_test = False  # years pass in file order; the stack ends with the module
    yield running
    running.stop()


@pytest.fixture(scope="module")
def table(rstack):
    return MotoSession(rstack.moto_url).resource("dynamodb").Table("rightsdesk-local-RightsTable")


def item(table, request_id: str, sk: str = "REQUEST") -> dict | None:
    return table.get_item(Key={"pk": f"REQ#{request_id}", "sk": sk}, ConsistentRead=True).get("Item")


def audit(table, request_id: str) -> list[dict]:
    answer = table.query(
        KeyConditionExpression=Key("pk").eq(f"REQ#{request_id}") & Key("sk").begins_with("AUDIT#"), ConsistentRead=True
    )
    return answer["Items"]


def deletions(table, request_id: str) -> set[tuple]:
    return {
        (e["item_kind"], e["action"], e["cause"])
        for e in audit(table, request_id)
        if e["action"] in ("deleted", "personal_data_purged")
    }


def submit(rstack, **fields) -> tuple[str, str]:
    email = f"keep-{uuid.uuid4().hex[:10]}@example.org"
    SENT_PERSONAL.append(email)
    answer = rstack.post("/v1/requests", json={"site": "demo", "type": "erasure", "email": email, **fields})
    assert answer.status_code == 202, answer.text
    return answer.json()["request_id"], email


def code_for(rstack, email: str) -> str:
    return re.search(r"\b(\d{6})\b", rstack.wait_for_mail(email)["text"]).group(1)


def verified(rstack) -> tuple[str, str]:
    request_id, email = submit(rstack, name="Grace Hopper", details="the chat of 2 May")
    SENT_PERSONAL.extend(["Grace Hopper", "the chat of 2 May"])
    answer = rstack.post(f"/v1/requests/{request_id}/verify", json={"code": code_for(rstack, email)})
    assert answer.status_code == 200, answer.text
    return request_id, answer.json()["status_token"]


def sweep(rstack, **detail) -> dict:
    event = None
    if detail:
        event = {"detail-type": "Scheduled Event", "source": "aws.events", "detail": detail}
    return rstack.run("RetentionFunction", event)["result"]


def cli(rstack, *args: str) -> dict:
    env = {
        **os.environ,
        "RIGHTSDESK_LOCAL_URL": rstack.base_url,
        "RIGHTSDESK_LOCAL_MOTO_URL": rstack.moto_url,
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [sys.executable, "-m", "rightsdesk_cli", "--local", "--json", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


# ------------------------------------------------------------------ the short deadlines


def test_a_code_disappears_after_15_minutes(rstack, table):
    request_id, _ = submit(rstack)
    rstack.advance_clock(15 * MINUTE + 1)

    result = sweep(rstack)

    assert result["by_rule"]["verification_code"]["deleted"] >= 1
    assert item(table, request_id, "CHALLENGE") is None
    assert item(table, request_id) is not None
    eventually(lambda: ("CHALLENGE", "deleted", "sweeper") in deletions(table, request_id))


def test_a_delivered_requests_personal_fields_go_within_the_hour_and_its_skeleton_stays(rstack, table):
    request_id, token = verified(rstack)
    delivered = eventually(
        lambda: (item(table, request_id) or {}).get("status") == "delivered" and item(table, request_id)
    )
    assert delivered["email"] and delivered["retention_rule"] == "delivered_subject_data"
    assert rstack.webhooks(), "the dispatcher really delivered to the demo controller's webhook"

    rstack.advance_clock(HOUR + 1)
    result = sweep(rstack)

    assert result["by_rule"]["delivered_subject_data"]["purged"] == 1
    after = item(table, request_id)
    assert not {"email", "name", "details"} & set(after)
    assert after["status"] == "delivered" and after["retention_rule"] == "skeleton"
    status = rstack.get(f"/v1/requests/{request_id}", headers={"Authorization": f"Bearer {token}"})
    assert status.status_code == 200 and status.json()["status"] == "delivered"
    eventually(lambda: ("REQUEST", "personal_data_purged", "sweeper") in deletions(table, request_id))


def test_an_unverified_request_disappears_after_72_hours(rstack, table):
    request_id, email = submit(rstack)
    code = code_for(rstack, email)
    wrong = "000000" if code != "000000" else "111111"
    kept = rstack.post(f"/v1/requests/{request_id}/verify", json={"code": wrong})
    assert kept.status_code == 400 and item(table, request_id) is not None, "there before its 72 hours"
    rstack.advance_clock(72 * HOUR + 1)

    result = sweep(rstack)

    assert result["by_rule"]["unverified_request"]["deleted"] >= 1
    assert item(table, request_id) is None
    assert rstack.post(f"/v1/requests/{request_id}/verify", json={"code": code}).status_code == 404
    eventually(lambda: ("REQUEST", "deleted", "sweeper") in deletions(table, request_id))
    expired = [e for e in audit(table, request_id) if e.get("to_status") == "expired"]
    assert len(expired) == 1 and expired[0]["actor"] == "retention-sweeper"


def test_a_completed_internal_request_keeps_its_personal_fields_30_days(rstack, table):
    """The operator's own requests: OwnRequestsFunction completes an access request at
    once and schedules the purge in the closing write."""
    site = f"own-{uuid.uuid4().hex[:8]}"
    cli(
        rstack,
        "controllers",
        "add",
        "--name",
        "Platform",
        "--site",
        site,
        "--contact",
        "dpo@platform.test",
        "--delivery",
        "internal",
    )
    email = f"own-{uuid.uuid4().hex[:10]}@example.org"
    SENT_PERSONAL.append(email)
    request_id = rstack.post("/v1/requests", json={"site": site, "type": "access", "email": email}).json()["request_id"]
    assert rstack.post(f"/v1/requests/{request_id}/verify", json={"code": code_for(rstack, email)}).status_code == 200
    closed = eventually(
        lambda: (item(table, request_id) or {}).get("status") == "completed" and item(table, request_id)
    )
    assert closed["retention_rule"] == "closed_internal_request" and closed["email"] == email

    rstack.advance_clock(30 * DAY - HOUR)
    sweep(rstack)
    assert item(table, request_id)["email"] == email
    rstack.advance_clock(2 * HOUR)
    result = sweep(rstack)

    assert result["by_rule"]["closed_internal_request"]["purged"] >= 1
    after = item(table, request_id)
    assert "email" not in after and after["status"] == "completed"
    eventually(lambda: ("REQUEST", "personal_data_purged", "sweeper") in deletions(table, request_id))


# ------------------------------------------------------------------ holds, from the CLI against the local run


def test_a_held_request_survives_past_its_time_and_goes_after_release(rstack, table):
    request_id, _ = submit(rstack)
    placed = cli(rstack, "hold", "place", "--request", request_id, "--reason", "case 2026-17")
    assert placed["legal_hold"]["reason"] == "case 2026-17"

    rstack.advance_clock(80 * HOUR)
    sweep(rstack)
    assert item(table, request_id) is not None
    shown = cli(rstack, "requests", "show", request_id)
    assert shown["request"]["legal_hold"]["reason"] == "case 2026-17", "a held item reads past its time"

    cli(rstack, "hold", "release", "--request", request_id)
    preview = cli(rstack, "retention", "sweep", "--dry-run")
    assert f"REQ#{request_id}" in {entry["pk"] for entry in preview["items"]}
    swept = cli(rstack, "retention", "sweep")

    assert swept["by_rule"]["unverified_request"]["deleted"] >= 1
    assert item(table, request_id) is None
    actions = {e["action"] for e in audit(table, request_id)}
    assert {"legal_hold_placed", "legal_hold_released"} <= actions
    eventually(lambda: ("REQUEST", "deleted", "sweeper") in deletions(table, request_id))


# ------------------------------------------------------------------ robustness


def test_sweeping_twice_is_harmless(rstack):
    sweep(rstack)
    again = sweep(rstack)
    assert not any(counts.get("deleted") or counts.get("purged") for counts in again["by_rule"].values())


def test_an_interrupted_sweep_finishes_on_the_next_run(rstack, table):
    ids = [submit(rstack)[0] for _ in range(3)]
    rstack.advance_clock(15 * MINUTE + 1)

    first = sweep(rstack, max_items=2)
    second = sweep(rstack)

    assert first["interrupted"] == "max_items"
    assert first["by_rule"]["verification_code"]["deleted"] == 2
    assert second["by_rule"]["verification_code"]["deleted"] == 1
    assert all(item(table, request_id, "CHALLENGE") is None for request_id in ids)


# ------------------------------------------------------------------ the long clock and the causes


def test_a_ttl_deletion_is_audited_as_ttl(rstack, table):
    request_id, _ = submit(rstack)
    stored = item(table, request_id)
    serialize = TypeSerializer().serialize
    image = {name: serialize(value) for name, value in stored.items()}
    record = {  # what DynamoDB's TTL emits; moto never expires anything
        "eventID": uuid.uuid4().hex,
        "eventName": "REMOVE",
        "eventSource": "aws:dynamodb",
        "eventVersion": "1.1",
        "awsRegion": "eu-central-1",
        "eventSourceARN": "arn:aws:dynamodb:eu-central-1:123456789012:table/x/stream/y",
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        "dynamodb": {
            "ApproximateCreationDateTime": int(time.time()),
            "Keys": {"pk": image["pk"], "sk": image["sk"]},
            "OldImage": image,
            "SequenceNumber": "1",
            "SizeBytes": 1,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }

    answer = rstack.run("DeletionAuditFunction", {"Records": [record]})

    assert answer["result"] == {"batchItemFailures": []}
    [event] = [e for e in audit(table, request_id) if e["action"] == "deleted"]
    assert (event["cause"], event["actor"], event["rule"]) == ("ttl", "dynamodb-ttl", "unverified_request")


def test_skeletons_go_after_three_years_and_the_audit_query_proves_it(rstack, table):
    request_id, _ = verified(rstack)
    eventually(lambda: (item(table, request_id) or {}).get("status") == "delivered")
    rstack.advance_clock(3 * 365 * DAY + DAY)

    result = sweep(rstack)

    assert result["by_rule"]["skeleton"]["deleted"] >= 1
    assert item(table, request_id) is None
    eventually(lambda: ("REQUEST", "deleted", "sweeper") in deletions(table, request_id))
    assert audit(table, request_id), "the audit trail outlives the skeleton"
    since = rstack.clock()["now"][:10]
    proof = cli(rstack, "retention", "audit", "--since", since, "--cause", "sweeper")
    assert f"REQ#{request_id}" in {row["record"] for row in proof["events"]}


def test_no_personal_data_reached_any_log_line(rstack):
    logs = rstack.logs()
    assert "retention sweep done" in logs and "deletion audited" in logs
    assert "RetentionFunction raised" not in logs and "DeletionAuditFunction raised" not in logs
    leaked = sorted({value for value in SENT_PERSONAL if value in logs})
    assert not leaked, f"personal data in logs: {len(leaked)} values"
