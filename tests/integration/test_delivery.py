"""Delivery to controllers through the local runner, over real HTTP: signed webhooks and their
retries, email and pull delivery, the purge schedule, deadline notices, and crash safety.

The module runs its own stack: it moves the clock by days (moto's SQS follows it, so retry waits
pass without sleeping) and changes the demo controller, which the session's shared stack must not see.
Tests run in file order; the ones that move the clock far come last.
"""

from __future__ import annotations

import json
import re
import socket
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from rightsdesk.kernel import retention
from rightsdesk.routing import delivery
from tests.support.flows import wait_for
from tests.support.openapi import event_problems
from tests.support.stack import add_with_cli

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DEMO_CONTACT = "privacy@demo.localhost"
QUEUE_VISIBILITY_SECONDS = 540  # template.yaml DeliveryQueue.VisibilityTimeout

PERSONAL: list[str] = []  # every personal value sent; the last test looks for them in the logs


# ------------------------------------------------------------------ fixtures and helpers


@pytest.fixture(scope="module")
def st(launch_stack):
    running = launch_stack()
    running.restore_clock_after_each_test = False  # file order, the clock only forward (module docstring)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def aws(st):
    return _Moto(st.moto_url)


class _Moto:
    """boto3 clients and resources of the module's moto."""

    def __init__(self, url: str):
        self.url = url
        self.session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-central-1"
        )

    def client(self, service: str):
        return self.session.client(service, endpoint_url=self.url)

    def resource(self, service: str):
        return self.session.resource(service, endpoint_url=self.url)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def table(aws):
    return aws.resource("dynamodb").Table("rightsdesk-local-RightsTable")


def rightsdesk(st, *args: str) -> dict:
    return st.cli_json(*args)


def register(st, delivery_mode: str, **options: str) -> tuple[str, str, dict]:
    """A new controller with its own site; returns (site, contact, the CLI's answer)."""
    site = f"shop-{uuid.uuid4().hex[:8]}"
    contact = f"privacy-{site}@example.net"
    flags = [part for option, value in options.items() for part in (f"--{option.replace('_', '-')}", value)]
    return site, contact, add_with_cli(st, site, contact, delivery_mode, *flags)


def submit_and_verify(st, site: str = "demo", **fields) -> dict:
    email = f"subject-{uuid.uuid4().hex[:10]}@example.org"
    name = f"Name {uuid.uuid4().hex[:6]}"
    PERSONAL.extend([email, name])
    body = {"site": site, "type": "access", "email": email, "name": name, **fields}
    submitted = st.post("/v1/requests", json=body, headers={"Accept": "application/json"})
    assert submitted.status_code == 202, submitted.text
    request_id = submitted.json()["request_id"]
    code = re.search(r"\b(\d{6})\b", st.wait_for_mail(email)["text"]).group(1)
    verified = st.post(f"/v1/requests/{request_id}/verify", json={"code": code}, headers={"Accept": "application/json"})
    assert verified.status_code == 200, verified.text
    return {"request_id": request_id, "email": email, "name": name, **verified.json()}


def events(st, request_id: str, event_type: str = "dsr.request.forwarded") -> list[dict]:
    return [
        d
        for d in st.webhooks()
        if isinstance(d["body"], dict)
        and d["body"].get("type") == event_type
        and d["body"]["data"].get("request_id") == request_id
    ]


def item(table, request_id: str) -> dict:
    return table.get_item(Key={"pk": f"REQ#{request_id}", "sk": "REQUEST"}, ConsistentRead=True)["Item"]


def audit(table, pk: str) -> list[dict]:
    found = table.query(KeyConditionExpression=Key("pk").eq(pk) & Key("sk").begins_with("AUDIT#"))["Items"]
    return sorted(found, key=lambda e: e["at"])


def transitions(table, request_id: str) -> list[tuple[str | None, str]]:
    return [(e.get("from_status"), e["to_status"]) for e in audit(table, f"REQ#{request_id}") if e.get("to_status")]


def status(table, request_id: str) -> str:
    return item(table, request_id)["status"]


def receiver(st, **settings) -> None:
    st._ok(st.post("/_dev/webhooks", json=settings))


def faults(st, **settings) -> None:
    st._ok(st.post("/_dev/faults", json={"function": "DispatcherFunction", **settings}))


def logged(st, message: str, request_id: str, attempt: int | None = None) -> bool:
    """A dispatcher log line with this message about this request (and attempt)."""
    for line in st.logs().splitlines():
        if f'"message":"{message}"' in line and request_id in line:
            if attempt is None or f'"attempt":{attempt},' in line:
                return True
    return False


def mails_to(st, address: str) -> list[dict]:
    return [mail for mail in st.outbox() if address in mail["to"]]


def assert_purge_scheduled(table, request_id: str, after_seconds: int) -> None:
    request = item(table, request_id)
    delivered_at = datetime.fromisoformat(request["delivered_at"].replace("+0000", "+00:00"))
    due = int(delivered_at.timestamp()) + after_seconds
    assert request["retention_rule"] == "delivered_subject_data"
    assert int(request["retention_due_at"]) == due
    keys = retention.expiry_index_keys(due, f"REQ#{request_id}", "REQUEST")
    assert (request["gsi2pk"], request["gsi2sk"]) == (keys["gsi2pk"], keys["gsi2sk"])


# ------------------------------------------------------------------ webhook delivery


def test_a_verified_request_reaches_the_webhook_signed_and_is_delivered_once(st, table):
    request = submit_and_verify(st, details="about my chat")
    PERSONAL.append("about my chat")
    rid = request["request_id"]

    [event] = wait_for(lambda: events(st, rid), "the forwarded event")
    wait_for(lambda: status(table, rid) == "delivered", "delivered")

    assert event["verified"] is True, "the receiver checked the signature with standardwebhooks"
    data = event["body"]["data"]
    assert data["subject"] == {"email": request["email"], "name": request["name"], "details": "about my chat"}
    assert data["type"] == "access" and data["due_at"] == request["due_at"]
    assert data["links"]["request"] == f"{st.base_url}/v1/controller/requests/{rid}"
    assert transitions(table, rid) == [
        (None, "identity_unverified"),
        ("identity_unverified", "verified"),
        ("verified", "forwarded"),
        ("forwarded", "delivered"),
    ]
    assert_purge_scheduled(table, rid, 3600)


def test_a_receiver_failing_three_times_then_succeeding_gets_it_once(st, table):
    receiver(st, fail={"status": 500, "times": 3})
    rid = submit_and_verify(st)["request_id"]

    for attempt, wait_seconds in enumerate((5, 300, 1800), start=1):
        wait_for(lambda: logged(st, "delivery failed", rid, attempt), f"attempt {attempt} to fail")
        assert status(table, rid) == "forwarded"
        early = wait_seconds - 30 if wait_seconds > 60 else 0  # real seconds pass too: keep a margin
        st.advance_clock(early)
        st.drain()
        assert len(events(st, rid)) == attempt, "no retry before the schedule says so"
        st.advance_clock(wait_seconds - early + 1)
    wait_for(lambda: status(table, rid) == "delivered", "delivered on the fourth attempt")

    deliveries = events(st, rid)
    assert [d["answered"] for d in deliveries] == [500, 500, 500, 204]
    assert len({d["webhook_id"] for d in deliveries}) == 1, "webhook-id is stable across retries"
    assert all(d["verified"] for d in deliveries)
    assert transitions(table, rid).count(("forwarded", "delivered")) == 1


def test_a_dispatcher_killed_mid_batch_loses_no_request(st, table):
    faults(st, pause=True)
    ids = [submit_and_verify(st)["request_id"] for _ in range(3)]
    st.drain()  # the three routes are queued from the table's stream (rightsdesk.routing.follow_up): one batch
    faults(st, crash_after_records=1, pause=False)

    first = wait_for(lambda: [rid for rid in ids if status(table, rid) == "delivered"], "the first record")
    st.drain()
    first = [rid for rid in ids if status(table, rid) == "delivered"]
    assert len(first) == 1, "the invocation died after its first record"
    st.advance_clock(QUEUE_VISIBILITY_SECONDS + 1)  # the batch comes back after the queue's visibility timeout
    wait_for(lambda: all(status(table, rid) == "delivered" for rid in ids), "every request delivered")
    st.drain()

    for rid in ids:
        assert len(events(st, rid)) == 1, "each request reached the controller exactly once"
        assert transitions(table, rid).count(("forwarded", "delivered")) == 1
        assert transitions(table, rid).count(("verified", "forwarded")) == 1


def test_a_test_event_reaches_the_webhook_and_is_audited(st, aws, table):
    queue = aws.client("sqs").get_queue_url(QueueName="rightsdesk-local-DeliveryQueue")["QueueUrl"]
    aws.client("sqs").send_message(
        QueueUrl=queue, MessageBody=json.dumps({"request_id": "", "event": "test", "controller_id": "ctl_demo"})
    )

    tests = wait_for(lambda: [d for d in st.webhooks() if d["body"].get("type") == "webhook.test"], "the test event")
    assert tests[0]["verified"] and tests[0]["body"]["data"]["controller_id"] == "ctl_demo"
    wait_for(
        lambda: any(
            e["action"] == "webhook_test" and e.get("cause") == "http_204" for e in audit(table, "CTRL#ctl_demo")
        ),
        "the audited test",
    )


def test_a_cancellation_is_announced_without_personal_data(st, table):
    request = submit_and_verify(st)
    rid = request["request_id"]
    wait_for(lambda: status(table, rid) == "delivered", "delivered")

    cancelled = st.post(
        f"/v1/requests/{rid}/cancel",
        headers={"Authorization": f"Bearer {request['status_token']}", "Accept": "application/json"},
    )
    assert cancelled.status_code == 200, cancelled.text

    [event] = wait_for(lambda: events(st, rid, "dsr.request.cancelled"), "the cancelled event")
    assert event["verified"] is True
    assert event["body"]["data"]["status"] == "cancelled"
    text = json.dumps(event["body"])
    assert request["email"] not in text and request["name"] not in text


# ------------------------------------------------------------------ email, pull, and the example receiver


def test_email_delivery_reaches_the_privacy_contact_in_its_language(st, table):
    site, contact, _ = register(st, "email", locale="de", purge_after="PT30M")
    request = submit_and_verify(st, site=site, details="Bitte alles löschen")
    PERSONAL.append("Bitte alles löschen")
    rid = request["request_id"]

    mail = st.wait_for_mail(contact)
    wait_for(lambda: status(table, rid) == "delivered", "delivered by email")

    assert mail["subject"] == "Neue Datenschutzanfrage: Meine Daten einsehen"
    assert rid in mail["text"] and request["email"] in mail["text"] and "Bitte alles löschen" in mail["text"]
    assert f"/v1/controller/requests/{rid}" in mail["text"]
    assert not events(st, rid)
    assert transitions(table, rid)[-1] == ("forwarded", "delivered")
    assert_purge_scheduled(table, rid, 30 * 60)  # the controller's own purge-after


def test_pull_delivery_waits_for_the_controller_api(st, table):
    site, contact, _ = register(st, "pull")
    rid = submit_and_verify(st, site=site)["request_id"]

    wait_for(lambda: logged(st, "delivery done", rid), "the dispatcher to finish")
    assert status(table, rid) == "forwarded"
    assert not mails_to(st, contact) and not events(st, rid)
    assert "retention_rule" not in item(table, rid) or item(table, rid)["retention_rule"] != "delivered_subject_data"


def test_410_disables_the_webhook_and_falls_back_to_email(st, table):
    receiver(st, fail={"status": 410, "times": 1})
    st.clear_outbox()
    try:
        request = submit_and_verify(st)
        rid = request["request_id"]

        mail = wait_for(lambda: [m for m in mails_to(st, DEMO_CONTACT) if rid in (m["text"] or "")], "the email")[0]
        wait_for(lambda: status(table, rid) == "delivered", "delivered by email")

        assert request["email"] in mail["text"]
        assert [d["answered"] for d in events(st, rid)] == [410]
        controller = rightsdesk(st, "controllers", "show", "ctl_demo")["controller"]
        # Disabled, not forgotten: by email until a test event re-enables the same endpoint.
        assert controller["delivery_now"] == "email" and controller["webhook_disabled_reason"] == "gone_410"
        disabled = [e for e in audit(table, "CTRL#ctl_demo") if e["action"] == "webhook_disabled"]
        assert [(e["actor"], e["cause"]) for e in disabled] == [("dispatcher", "http_410")]
        assert transitions(table, rid)[-1] == ("forwarded", "delivered")
        assert [e.get("cause") for e in audit(table, f"REQ#{rid}") if e.get("to_status") == "delivered"] == [
            "delivered_email"
        ]
        told = wait_for(
            lambda: [m for m in mails_to(st, DEMO_CONTACT) if m["subject"] == "Your webhook endpoint was disabled"],
            "the contact told of the 410",
        )
        assert len(told) == 1 and "ctl_demo" in told[0]["text"] and "410" in told[0]["text"]
    finally:
        # Webhooks again for the tests after this one; a new secret (if one was issued) goes to the
        # demo receiver.
        answer = rightsdesk(
            st,
            "controllers",
            "set-delivery",
            "ctl_demo",
            "--delivery",
            "webhook",
            "--webhook-url",
            st.health()["demo"]["webhook_url"],
        )
        if answer["webhook_secret"]:
            receiver(st, secret=answer["webhook_secret"])


# ------------------------------------------------------------------ these move the clock by days: keep them last


def test_exhausted_retries_mark_delivery_failed_email_the_contact_and_reach_the_dlq(st, aws, table):
    allowed = delivery.DEFAULT_MAX_ATTEMPTS
    receiver(st, fail={"status": 503, "times": allowed})
    rid = submit_and_verify(st)["request_id"]

    for attempt in range(1, allowed):
        wait_for(lambda: logged(st, "delivery failed", rid, attempt), f"attempt {attempt} to fail")
        st.advance_past_retry(delivery.retry_delay(attempt) + 1)
    wait_for(lambda: status(table, rid) == "delivery_failed", "delivery_failed after the last attempt")

    deliveries = events(st, rid)
    assert len(deliveries) == allowed and len({d["webhook_id"] for d in deliveries}) == 1
    assert transitions(table, rid)[-1] == ("forwarded", "delivery_failed")
    mail = wait_for(
        lambda: [m for m in mails_to(st, DEMO_CONTACT) if rid in (m["text"] or "") and "webhook" in m["subject"]],
        "the contact's email",
    )[0]
    assert "http_503" in mail["text"]

    sqs = aws.client("sqs")
    dlq = sqs.get_queue_url(QueueName="rightsdesk-local-DeliveryDeadLetterQueue")["QueueUrl"]

    def dead_letters():
        messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        return [m for m in messages if json.loads(m["Body"]).get("request_id") == rid]

    assert wait_for(dead_letters, "the message in the dead-letter queue")


def test_a_request_left_verified_is_routed_again_by_the_deadline_watch(st, aws, table):
    sqs = aws.client("sqs")
    queue = sqs.get_queue_url(QueueName="rightsdesk-local-DeliveryQueue")["QueueUrl"]
    faults(st, pause=True)
    try:
        rid = submit_and_verify(st)["request_id"]
        # The verify step's enqueue "failed": its message is gone before the dispatcher saw it.
        lost = wait_for(
            lambda: [
                m
                for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                    "Messages", []
                )
                if rid in m["Body"]
            ],
            "the route message",
        )
        for message in lost:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    finally:
        faults(st, pause=False)
    st.drain()
    assert status(table, rid) == "verified"

    st.advance_clock(10 * 60)
    assert st.run("DeadlineWatchFunction")["result"]["rerouted"] == 0, "not before 15 minutes"
    st.advance_clock(6 * 60)
    assert st.run("DeadlineWatchFunction")["result"]["rerouted"] >= 1
    wait_for(lambda: status(table, rid) == "delivered", "delivered after the re-route")
    assert len(events(st, rid)) == 1


def test_deadline_notices_go_once_three_days_before_and_once_on_the_due_date(st, table):
    request = submit_and_verify(st)
    rid = request["request_id"]
    wait_for(lambda: status(table, rid) == "delivered", "delivered")
    due = datetime.fromisoformat(request["due_at"].replace("Z", "+00:00"))

    def move_to(day: datetime) -> None:
        now = datetime.fromisoformat(st.clock()["now"].replace("Z", "+00:00"))
        st.advance_clock(max(0.0, (day - now).total_seconds()))

    def notices() -> list[str]:
        return [e["body"]["data"].get("notice") for e in events(st, rid, "dsr.request.overdue")]

    start_of_due_day = datetime.combine(due.date(), datetime.min.time(), tzinfo=timezone.utc)
    move_to(start_of_due_day - timedelta(days=4) + timedelta(hours=1))
    st.run("DeadlineWatchFunction")
    st.drain()
    assert notices() == [], "nothing four days before"

    move_to(start_of_due_day - timedelta(days=3) + timedelta(hours=1))
    st.run("DeadlineWatchFunction")
    st.run("DeadlineWatchFunction")
    wait_for(lambda: notices(), "the 3-day notice")
    move_to(start_of_due_day + timedelta(hours=1))
    st.run("DeadlineWatchFunction")
    st.run("DeadlineWatchFunction")
    wait_for(lambda: len(notices()) == 2, "the due-date notice")
    st.drain()

    assert notices() == ["due_in_3_days", "due_today"]
    for event in events(st, rid, "dsr.request.overdue"):
        assert event["verified"] is True
        text = json.dumps(event["body"])
        assert request["email"] not in text and request["name"] not in text
    recorded = [e["cause"] for e in audit(table, f"REQ#{rid}") if e["action"] == "deadline_notice"]
    assert recorded == ["due_in_3_days", "due_today"]


def test_every_event_the_receiver_got_is_what_the_event_catalog_says(st):
    bodies = [d["body"] for d in st.webhooks() if isinstance(d["body"], dict)]
    assert {body["type"] for body in bodies} >= {"dsr.request.forwarded", "dsr.request.cancelled", "webhook.test"}
    assert [problem for body in bodies for problem in event_problems(body)] == []


def test_no_personal_data_reached_any_log_line(st):
    logs = st.logs()
    assert '"message":"delivery done"' in logs, "the dispatcher's logs are captured"
    leaked = sorted({value for value in PERSONAL if value in logs})
    assert not leaked, f"personal data in logs: {len(leaked)} values"
