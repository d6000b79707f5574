"""Account lifecycles end to end through the local runner over real HTTP: the product's account
events PutEvents to moto's bus, the runner routes the rule to LifecycleFunction (moto's matcher),
the account is recorded; the clock moves, the hourly run (/_dev/run) warns the holder in their
language (the notifier through moto's SES), and later opens an erasure request that the dispatcher
moves to in_progress; the operator's CLI shows accounts and the dry run. No personal data in the
run's log.

The tests run in file order on a stack of their own, the clock only moving forward.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.support.flows import wait_for

pytestmark = pytest.mark.integration

SITE = "platform"
PERSONAL: set[str] = set()
STATE: dict = {}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.support.stack import start_stack

    calls = tmp_path_factory.mktemp("lifecycle-calls") / "calls.jsonl"
    STATE["calls"] = calls
    running = start_stack(
        tmp_path_factory.mktemp("lifecycle-stack"), "--no-schedules", env={"RIGHTSDESK_LOCAL_RECORD_CALLS": str(calls)}
    )
    running.restore_clock_after_each_test = False
    running.cli(
        "controllers",
        "add",
        "--name",
        "Example Platform",
        "--site",
        SITE,
        "--contact",
        "privacy@platform.test",
        "--delivery",
        "internal",
        "--id",
        "ctl_platform",
    )
    yield running
    running.stop()


def bus(stack) -> str:
    names = [b["Name"] for b in stack.client("events").list_event_buses()["EventBuses"]]
    [found] = [name for name in names if name.endswith("-accounts")]
    return found


def put(stack, detail_type: str, detail: dict) -> None:
    answer = stack.client("events").put_events(
        Entries=[
            {
                "EventBusName": bus(stack),
                "Source": "rightsdesk.product",
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0


def account_item(stack, account_id: str) -> dict | None:
    table = stack.client("dynamodb")
    name = next(t for t in table.list_tables()["TableNames"] if t.endswith("RightsTable"))
    found = table.get_item(
        TableName=name, Key={"pk": {"S": f"ACCOUNT#{account_id}"}, "sk": {"S": "ACCOUNT"}}, ConsistentRead=True
    )
    return found.get("Item")


def now(stack) -> datetime:
    return datetime.fromtimestamp(time.time() + stack.clock()["offset_seconds"], timezone.utc)


def move_to(stack, moment: datetime) -> None:
    stack.advance_clock((moment - now(stack)).total_seconds())


def test_account_activity_on_the_bus_records_the_account(stack):
    account_id = f"acct_{int(time.time())}"
    email = f"holder-{account_id}@holders.test"
    PERSONAL.update({email, f"u-{account_id}"})
    put(
        stack,
        "Account Activity",
        {"account_id": account_id, "email": email, "locale": "sl", "identities": {"user_id": f"u-{account_id}"}},
    )
    item = wait_for(lambda: account_item(stack, account_id), "the account recorded")
    assert item["state"]["S"] == "active" and item["locale"]["S"] == "sl"
    STATE.update(account_id=account_id, email=email, day=item["last_active_day"]["S"])

    # an event of another source is not ours: the rule does not route it
    stack.client("events").put_events(
        Entries=[
            {
                "EventBusName": bus(stack),
                "Source": "someone.else",
                "DetailType": "Account Activity",
                "Detail": json.dumps({"account_id": "acct_other"}),
            }
        ]
    )
    stack.drain()
    assert account_item(stack, "acct_other") is None


def test_the_warning_goes_at_28_days_in_the_holders_language(stack):
    day = datetime.fromisoformat(STATE["day"]).replace(tzinfo=timezone.utc)
    move_to(stack, day + timedelta(days=28, hours=23))  # 27 days and 23 hours after the day ended
    stack.run("LifecycleFunction")
    stack.drain()
    assert not [m for m in stack.outbox() if STATE["email"] in m["to"]]

    move_to(stack, day + timedelta(days=29, hours=1))
    answer = stack.run("LifecycleFunction")
    assert answer["result"]["counts"].get("warned") == 1
    mail = stack.wait_for_mail(STATE["email"])
    assert "Vaš račun bo zaprt" in mail["subject"]
    assert account_item(stack, STATE["account_id"])["state"]["S"] == "warned"


def test_the_operator_sees_the_account_and_the_dry_run(stack):
    shown = stack.cli_json("accounts", "show", STATE["account_id"])
    assert shown["state"] == "warned" and shown["next_step"] == "erase"
    listed = stack.cli_json(
        "accounts", "list", "--inactive-since", (now(stack) - timedelta(days=20)).date().isoformat()
    )
    assert STATE["account_id"] in [a["account_id"] for a in listed["accounts"]]
    day = datetime.fromisoformat(STATE["day"]).replace(tzinfo=timezone.utc)
    move_to(stack, day + timedelta(days=58))
    dry = stack.cli_json("lifecycle", "run", "--dry-run")
    [entry] = [e for e in dry["items"] if e.get("account_id") == STATE["account_id"]]
    assert entry["step"] == "erase" and "warned" in entry["why"]
    assert account_item(stack, STATE["account_id"]) is not None  # the dry run wrote nothing


def test_the_operator_holds_and_releases_an_account(stack):
    put(stack, "Account Activity", {"account_id": "acct_held_1"})
    wait_for(lambda: account_item(stack, "acct_held_1"), "the account recorded")
    held = stack.cli_json("accounts", "hold", "acct_held_1", "--reason", "case 2026-17")
    assert held["legal_hold"]["reason"] == "case 2026-17"
    assert "gsi2pk" not in account_item(stack, "acct_held_1")  # off the due index
    released = stack.cli_json("accounts", "release", "acct_held_1")
    assert released["legal_hold"] is None and released["next_step"] == "warn"
    assert "gsi2pk" in account_item(stack, "acct_held_1")


def test_the_deletion_opens_an_erasure_request_the_dispatcher_moves_on(stack):
    answer = stack.run("LifecycleFunction")
    assert answer["result"]["counts"].get("erasure_opened") == 1
    assert account_item(stack, STATE["account_id"]) is None
    table = stack.client("dynamodb")
    name = next(t for t in table.list_tables()["TableNames"] if t.endswith("RightsTable"))

    def opened():
        items = table.scan(
            TableName=name,
            FilterExpression="sk = :s AND request_type = :t AND controller_id = :c",
            ExpressionAttributeValues={":s": {"S": "REQUEST"}, ":t": {"S": "erasure"}, ":c": {"S": "ctl_platform"}},
        )["Items"]
        moved = [i for i in items if i["status"]["S"] != "verified"]
        return moved or None

    [request] = wait_for(opened, "the erasure request routed")
    assert request["status"]["S"] in ("in_progress", "completed")
    STATE["request_id"] = request["request_id"]["S"]


def test_a_failing_account_event_is_retried_then_dead_lettered_like_an_async_invoke(stack):
    sqs = stack.client("sqs")
    dlq = sqs.get_queue_url(QueueName="rightsdesk-local-LifecycleDeadLetterQueue")["QueueUrl"]
    # fails once, then the retry records it
    stack.post(
        "/_dev/faults",
        json={
            "aws": [
                {
                    "service": "dynamodb",
                    "operation": "UpdateItem",
                    "error": "InternalServerError",
                    "times": 4,
                    "function": "LifecycleFunction",
                }
            ]
        },
    )
    put(stack, "Account Activity", {"account_id": "acct_retried"})
    wait_for(lambda: account_item(stack, "acct_retried"), "the event recorded on a retry", timeout=30)
    stack.http.delete(f"{stack.base_url}/_dev/faults", timeout=10)

    # fails every time: two retries, then the dead-letter queue with Lambda's failure record
    stack.post(
        "/_dev/faults",
        json={
            "aws": [
                {
                    "service": "dynamodb",
                    "operation": "UpdateItem",
                    "error": "InternalServerError",
                    "times": -1,
                    "function": "LifecycleFunction",
                }
            ]
        },
    )
    put(stack, "Account Activity", {"account_id": "acct_dead"})

    def dead_lettered():
        return sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages") or None

    [message] = wait_for(dead_lettered, "the event dead-lettered", timeout=30)
    stack.http.delete(f"{stack.base_url}/_dev/faults", timeout=10)
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"]["detail"] == {"account_id": "acct_dead"}
    assert account_item(stack, "acct_dead") is None


def test_no_personal_data_reached_any_log_line(stack):
    logs = stack.logs()
    leaked = sorted(value for value in PERSONAL if value in logs)
    assert not leaked, f"personal data in the local run's log: {leaked}"


def test_every_call_the_lifecycle_made_is_granted_by_its_policy(stack):
    """Moto enforces no IAM: the calls recorded on this stack, against the template's statements."""
    from local.template import read as read_template
    from tests.integration.test_granted_calls import TEMPLATE, allowed

    template = read_template(TEMPLATE)
    calls = [json.loads(line) for line in STATE["calls"].read_text().splitlines()]
    mine = [c for c in calls if c["function"] == "LifecycleFunction"]
    assert {c["action"] for c in mine if c["service"] == "dynamodb"} >= {"UpdateItem", "Query", "BatchGetItem"}
    refused = sorted(
        {
            json.dumps({k: c.get(k) for k in ("service", "action", "resource", "index")})
            for c in mine
            if c["service"] in ("dynamodb", "kms")
            and c["action"] in ({"Encrypt", "Decrypt"} if c["service"] == "kms" else {c["action"]})
            and not allowed(template, c)
        }
    )
    assert not refused, "calls the template does not allow:\n" + "\n".join(refused)
