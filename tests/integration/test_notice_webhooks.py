"""`breach.notice` and `policy.updated` through the local runner, over real HTTP: the CLI declares and
publishes, the dispatcher signs and sends, a controller's endpoint verifies with `standardwebhooks`.

One stack for the module (a major policy version reaches every controller of the stack, which the
session's shared stack must not see). Its webhook controller points at an endpoint in this process,
so the test holds the raw bytes and headers it verifies; the demo controller's receiver verifies its
own copies. Tests run in file order and build on each other.
"""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from standardwebhooks.webhooks import Webhook

from rightsdesk.routing.delivery import DeliveryMessage
from tests.support.flows import wait_for
from tests.support.openapi import event_problems

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HOOK, MAIL = "ctl_hook", "ctl_mail"
CONTACTS = {HOOK: "privacy@hook-shop.example", MAIL: "privacy@mail-shop.example"}
SUMMARY = "An export job made chat transcripts readable by another customer."
POLICY_SUMMARY = "Chat transcripts are now kept for 30 days."
STATE: dict = {}


class Endpoint(http.server.BaseHTTPRequestHandler):
    """The webhook controller's endpoint: keeps the raw body and headers, answers 204."""

    received: list[dict] = []  # noqa: RUF012 - shared test state on purpose

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Endpoint.received.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def endpoint():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/rightsdesk"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def st(launch_stack, endpoint):
    running = launch_stack()
    added = rightsdesk(
        running,
        "controllers",
        "add",
        "--id",
        HOOK,
        "--name",
        "Hook Shop",
        "--site",
        "hook-shop",
        "--contact",
        CONTACTS[HOOK],
        "--delivery",
        "webhook",
        "--webhook-url",
        endpoint,
    )
    STATE["secret"] = added["webhook_secret"]
    rightsdesk(
        running,
        "controllers",
        "add",
        "--id",
        MAIL,
        "--name",
        "Mail Shop",
        "--site",
        "mail-shop",
        "--contact",
        CONTACTS[MAIL],
        "--delivery",
        "email",
    )
    yield running
    running.stop()


def rightsdesk(st, *args: str, json_output: bool = True) -> dict | str:
    return st.cli_json(*args) if json_output else st.cli(*args).stdout


def ours(event_type: str) -> list[dict]:
    """What our endpoint received of this type, each verified with the controller's secret."""
    found = []
    for delivery in list(Endpoint.received):
        event = Webhook(STATE["secret"]).verify(delivery["body"], delivery["headers"])
        assert event_problems(event) == [], "every event is what the event catalog says"
        if event["type"] == event_type:
            found.append({**delivery, "event": event})
    return found


def demos(st, event_type: str) -> list[dict]:
    return [d for d in st.webhooks() if isinstance(d["body"], dict) and d["body"].get("type") == event_type]


def audit(st, pk: str, action: str) -> list[dict]:
    table = boto3.resource(
        "dynamodb",
        endpoint_url=st.moto_url,
        region_name="eu-central-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).Table("rightsdesk-local-RightsTable")
    found = table.query(KeyConditionExpression=Key("pk").eq(pk) & Key("sk").begins_with("AUDIT#"), ConsistentRead=True)[
        "Items"
    ]
    return sorted((e for e in found if e["action"] == action), key=lambda e: e["sk"])


# ------------------------------------------------------------------ breach.notice


def test_a_breach_is_one_signed_event_to_the_webhook_controller_and_an_email_to_both(st):
    declared = rightsdesk(
        st,
        "breach",
        "declare",
        "--detected-at",
        "now",
        "--summary",
        SUMMARY,
        "--categories",
        "chat_history",
        "--controllers",
        f"{HOOK},{MAIL}",
    )
    incident_id = STATE["incident"] = declared["incident"]["incident_id"]
    assert declared["incident"]["webhooks_queued"] == 1

    [sent] = wait_for(lambda: ours("breach.notice"), "the breach.notice event")
    data = sent["event"]["data"]
    assert (data["incident_id"], data["controller_id"], data["summary"]) == (incident_id, HOOK, SUMMARY)
    assert not any(contact.encode() in sent["body"] for contact in CONTACTS.values()), "no recipient address"
    for contact in CONTACTS.values():
        assert incident_id in st.wait_for_mail(contact)["text"], "the email is the notice, webhook or not"

    def recorded():
        status = rightsdesk(st, "breach", "status", incident_id)
        return status if status["incident"]["webhooks_delivered"] == 1 else None

    status = wait_for(recorded, "the outcome on the notice")
    webhook = {r["recipient"]: r["webhook"] for r in status["recipients"] if r["kind"] == "controller"}
    assert webhook == {HOOK: "delivered", MAIL: None}
    assert status["incident"]["webhooks_queued"] == 1
    table = rightsdesk(st, "breach", "status", incident_id, json_output=False)
    assert "1 of 1 delivered" in table and "webhook" in table
    assert len(ours("breach.notice")) == 1 and not demos(st, "breach.notice"), "only the webhook controller's"


def test_a_redelivered_breach_notice_is_not_sent_again(st):
    body = {"event": "breach.notice", "controller_id": HOOK, "incident_id": STATE["incident"]}
    delivery_id = DeliveryMessage.from_body(body, message_id="-").delivery_id
    sqs = st.client("sqs")
    sqs.send_message(
        QueueUrl=sqs.get_queue_url(QueueName="rightsdesk-local-DeliveryQueue")["QueueUrl"], MessageBody=json.dumps(body)
    )

    def handled() -> int:
        return sum(1 for line in st.logs().splitlines() if '"message":"delivery done"' in line and delivery_id in line)

    wait_for(lambda: handled() == 2, "the copy to be handled")  # logged after any POST it made
    assert len(ours("breach.notice")) == 1
    assert [e["cause"] for e in audit(st, f"INCIDENT#{STATE['incident']}", "breach_webhook")] == [
        f"{HOOK}:delivered:http_204"
    ]


# ------------------------------------------------------------------ policy.updated


def test_a_major_policy_version_is_one_event_per_webhook_controller_and_a_minor_one_none(st, tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text(POLICY_SUMMARY)
    text = tmp_path / "policy.html"
    text.write_text("<h1>Privacy policy</h1>")
    for version, major in (("2026-11", False), ("2026-12", True)):
        rightsdesk(
            st,
            "policy",
            "publish",
            "--doc",
            "privacy",
            "--version",
            version,
            "--url",
            f"https://example.com/privacy/{version}",
            "--summary-file",
            str(summary),
            "--text-file",
            str(text),
            *(["--major"] if major else []),
        )

    [mine] = wait_for(lambda: ours("policy.updated"), "our policy.updated event")
    [demo] = wait_for(lambda: demos(st, "policy.updated"), "the demo controller's event")
    assert demo["verified"] is True, "the demo receiver checked it with standardwebhooks"
    for data in (mine["event"]["data"], demo["body"]["data"]):
        assert (data["doc"], data["version"], data["major"]) == ("privacy", "2026-12", True)
    wait_for(lambda: st.queue_empty("DeliveryQueue"), "the delivery queue to drain")
    wait_for(lambda: audit(st, f"CTRL#{HOOK}", "policy_webhook"), "the audited outcome")
    assert len(ours("policy.updated")) == 1 and len(demos(st, "policy.updated")) == 1, "none for the minor version"
    assert [e["cause"] for e in audit(st, f"CTRL#{HOOK}", "policy_webhook")] == ["privacy/2026-12:delivered:http_204"]
    assert not audit(st, f"CTRL#{MAIL}", "policy_webhook")
    wait_for(
        lambda: [m for m in st.outbox() if CONTACTS[MAIL] in m["to"] and "2026-12" in m["text"]],
        "the email controller's policy notice",
    )


def test_no_address_and_no_notice_text_reached_a_log_line(st):
    logs = st.logs()
    assert '"message":"delivery done"' in logs, "the dispatcher's log lines are captured"
    for secret in (*CONTACTS.values(), SUMMARY, POLICY_SUMMARY):
        assert secret not in logs
