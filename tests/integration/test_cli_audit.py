"""`rightsdesk --local` operator commands that change state through queues or the consent ledger:
each run leaves exactly one audit event of its kind, naming the local operator, with ids and counts
only (read from the stored item); a refused run, or one that changed nothing, leaves none."""

from __future__ import annotations

import getpass
import json
import uuid
from typing import Any

import pytest
from boto3.dynamodb.conditions import Attr, Key

from tests.support.flows import wait_for

pytestmark = pytest.mark.integration

LOCAL_OPERATOR = {"account": "local", "principal": f"local:{getpass.getuser()}"}


def events(table: Any, pk: str, action: str) -> list[dict]:
    """The stored audit events of `pk` with that action, every attribute as DynamoDB holds it."""
    found = table.query(KeyConditionExpression=Key("pk").eq(pk) & Key("sk").begins_with("AUDIT#"), ConsistentRead=True)
    return [item for item in found["Items"] if item["action"] == action]


def ledger_entries(table: Any, source: str) -> list[dict]:
    """Consent records granted from `source`, found by a scan over every page (tests may scan)."""
    found, start = [], {}
    while True:
        page = table.scan(FilterExpression=Attr("granted_source").eq(source), ConsistentRead=True, **start)
        found += page["Items"]
        if "LastEvaluatedKey" not in page:
            return found
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def assert_names_the_local_operator(event: dict) -> None:
    assert event["actor"] == "operator"
    assert {key: event["operator"][key] for key in LOCAL_OPERATOR} == LOCAL_OPERATOR
    assert len(event["operator"]["arn_hash"]) == 64


def assert_nothing_personal(event: dict, *personal: str) -> None:
    stored = json.dumps(event, default=str)
    assert not [value for value in personal if value in stored]


# ------------------------------------------------------------------ dlq redrive


def test_a_redrive_is_one_event_on_its_queue_and_a_refused_one_none(stack, table):
    sqs = stack.client("sqs")
    dead = sqs.get_queue_url(QueueName="rightsdesk-local-ConnectorTaskDeadLetterQueue")["QueueUrl"]
    address = f"dlq-{uuid.uuid4().hex[:8]}@example.org"
    # not a task the worker runs (no step, no token): it is logged as malformed and dropped
    sqs.send_message(QueueUrl=dead, MessageBody=json.dumps({"note": f"for {address}"}))
    pk = "DLQ#ConnectorTaskDeadLetterQueue"
    before = len(events(table, pk, "dlq_redriven"))

    refused = stack.cli("dlq", "redrive", "ConnectorTaskDeadLetterQueue", check=False)  # no --yes: asked, no answer
    assert refused.returncode != 0
    assert len(events(table, pk, "dlq_redriven")) == before

    moved = stack.cli_json("dlq", "redrive", "ConnectorTaskDeadLetterQueue", "--max", "1", "--yes")

    written = events(table, pk, "dlq_redriven")
    assert moved["moved"] == 1 and len(written) == before + 1
    newest = max(written, key=lambda e: e["sk"])
    assert newest["cause"] == "moved:rightsdesk-local-ConnectorTaskQueue:1"
    assert_names_the_local_operator(newest)
    assert_nothing_personal(newest, address, "note")
    history = stack.cli_json("dlq", "history", "connectortaskdead")
    assert history["queue"] == "ConnectorTaskDeadLetterQueue"
    assert history["events"][0]["cause"] == newest["cause"]
    assert history["events"][0]["operator"]["principal"] == LOCAL_OPERATOR["principal"]


# ------------------------------------------------------------------ newsletter send


def test_an_issue_sent_is_one_event_on_its_list_and_a_refused_one_none(stack, table, tmp_path):
    member = f"news-{uuid.uuid4().hex[:8]}@example.org"
    stack.cli("contacts", "add", member, "--list", "marketing")
    body = tmp_path / "issue.txt"
    body.write_text("Dear reader,\n\nwinter offers inside.")
    issue = f"audit-{uuid.uuid4().hex[:8]}"

    def mine() -> list[dict]:
        return [e for e in events(table, "LIST#marketing", "issue_sent") if e["cause"].startswith(f"{issue}:")]

    refused = stack.cli("newsletter", "send", "--issue", f"{issue} no spaces", "--subject", "Offers",
                        "--body-file", str(body), "--list", "marketing", check=False)  # fmt: skip
    assert refused.returncode == 1 and mine() == []

    sent = stack.cli_json("newsletter", "send", "--issue", issue, "--subject", "Winter offers",
                          "--body-file", str(body), "--list", "marketing")  # fmt: skip

    [event] = mine()
    name, digest, queued, skipped = event["cause"].split(":")
    assert (queued, skipped) == (f"queued_{sent['queued']}", f"skipped_{sent['skipped']}") and sent["queued"] >= 1
    assert len(digest) == 12
    assert_names_the_local_operator(event)
    assert_nothing_personal(event, member, "Winter", "reader")
    shown = stack.cli_json("newsletter", "history", "--list", "marketing")["events"]
    assert event["cause"] in [e["cause"] for e in shown]


# ------------------------------------------------------------------ breach resend


def test_a_resend_is_one_event_on_the_incident_and_one_with_nothing_waiting_none(stack, table, own_controller):
    declared = stack.cli_json("breach", "declare", "--detected-at", "now", "--summary", "Chat logs readable.",
                              "--categories", "chat_history", "--controllers", own_controller.controller_id,
                              "--contact", "dpo@op.test")  # fmt: skip
    incident_id = declared["incident"]["incident_id"]
    pk = f"INCIDENT#{incident_id}"
    wait_for(
        lambda: stack.cli_json("breach", "status", incident_id)["counts"]["total"]["pending"] == 0,
        "the controller's notice sent",
    )

    nothing = stack.cli_json("breach", "resend", incident_id)
    assert nothing["queued"] == 0 and events(table, pk, "notices_resent") == []

    # its mail bounced, say, and the address is fixed now
    notice = table.query(KeyConditionExpression=Key("pk").eq(pk) & Key("sk").begins_with("NOTICE#"))["Items"]
    table.update_item(
        Key={"pk": pk, "sk": notice[0]["sk"]},
        UpdateExpression="SET #status = :failed",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":failed": "failed"},
    )
    resent = stack.cli_json("breach", "resend", incident_id)

    [event] = events(table, pk, "notices_resent")
    assert resent["queued"] == 1 and event["cause"] == "controllers_1_subjects_0"
    assert_names_the_local_operator(event)
    assert_nothing_personal(event, "dpo@op.test", "Chat logs")
    history = stack.cli_json("breach", "history", incident_id)["events"]
    assert [e["action"] for e in history][-1] == "breach_declared"
    assert "notices_resent" in [e["action"] for e in history]


# ------------------------------------------------------------------ consents grant


def test_a_grant_is_one_event_on_the_contact_and_a_refused_one_none(stack, table):
    email = f"grant-{uuid.uuid4().hex[:8]}@example.org"
    source = f"ticket-{uuid.uuid4().hex[:8]}"

    refused = stack.cli("consents", "grant", "--email", email, "--purpose", "telepathy", "--source", source,
                        check=False)  # fmt: skip
    assert refused.returncode != 0
    assert ledger_entries(table, source) == []

    stack.cli_json("consents", "grant", "--email", email, "--purpose", "analytics", "--source", source)

    ledger = ledger_entries(table, source)
    assert [(c["purpose"], c["history"][-1]["by"]) for c in ledger] == [("analytics", "operator")]
    [event] = events(table, ledger[0]["pk"], "consent_granted")
    assert event["cause"] == "analytics"
    assert_names_the_local_operator(event)
    assert_nothing_personal(event, email, source)
    shown = stack.cli_json("consents", "history", "--email", email)
    assert [(e["action"], e["cause"]) for e in shown["events"]] == [("consent_granted", "analytics")]
    assert email not in json.dumps(shown)
