"""No personal data anywhere it should not be: one run with known subjects through the whole local
stack, then a search of everything it left behind.

The subjects: one whose request is delivered to the demo controller's webhook, read through the
controller API, purged an hour after delivery and later reminded about (a webhook after the purge);
one who cancels; one who never verifies (deleted after 72 hours). Then the failure paths and every
other status: a request whose webhook fails every attempt (DeliveryDeadLetterQueue), one whose
forwarding mail SES refuses every time with its confirmation mail (MailDeadLetterQueue), a pull
controller's request nobody fetched, requests moved to in_progress, completed and rejected (with a
reason naming the subject), one left verified while the dispatcher is paused, and one left waiting
for its code. Queue messages carry ids only (rightsdesk.store.outbox): no address, name, detail, code
or token may be in any queue or dead-letter queue, whatever happened to the request. Where DESIGN.md lets their
addresses be: the request until its purge, the queues and SES while mail is sent, the controller
(webhook, controller API) until the purge. Everywhere else, and everywhere after retention, only
keyed hashes, never the address, a name or a detail, nor an unkeyed hash of the address.

Searched: every log line of the run (the handlers' JSON logs and their EMF metrics, the runner's
own lines), the IdempotencyTable, the RightsTable after retention, every queue and dead-letter
queue, and the webhook payloads sent after the purge. Traces: the local run records none, and in
AWS they are Lambda's own segments only (timings): no handler loads a tracer that could store an
answer or an error message (tests/template/test_operations_template.py).
Secrets (status tokens, webhook secrets) must not reach a log line either.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from rightsdesk.outbound import notify
from rightsdesk.routing import delivery
from tests.support.flows import Flow, wait_for

pytestmark = pytest.mark.integration

RUN = str(int(time.time()))
DELIVERED = {"email": f"ana.novak.{RUN}@example.org", "name": f"Ana Novak {RUN}", "details": f"chat of {RUN} May"}
CANCELLED = {"email": f"bor.kos.{RUN}@example.org", "name": f"Bor Kos {RUN}", "details": f"order {RUN}"}
UNVERIFIED = {"email": f"cene.vidmar.{RUN}@example.org", "name": f"Cene Vidmar {RUN}", "details": None}
HOOK_FAILED = {"email": f"dora.zupan.{RUN}@example.org", "name": f"Dora Zupan {RUN}", "details": f"ticket {RUN}-7"}
MAIL_FAILED = {"email": f"eva.kralj.{RUN}@example.org", "name": f"Eva Kralj {RUN}", "details": f"invoice {RUN}-8"}
PULLED = {"email": f"filip.horvat.{RUN}@example.org", "name": f"Filip Horvat {RUN}", "details": f"call {RUN}-9"}
IN_PROGRESS = {"email": f"gal.zagar.{RUN}@example.org", "name": f"Gal Zagar {RUN}", "details": f"cart {RUN}-10"}
COMPLETED = {"email": f"hana.mlakar.{RUN}@example.org", "name": f"Hana Mlakar {RUN}", "details": f"login {RUN}-11"}
REJECTED = {"email": f"iva.bizjak.{RUN}@example.org", "name": f"Iva Bizjak {RUN}", "details": f"photo {RUN}-12"}
PAUSED = {"email": f"jan.golob.{RUN}@example.org", "name": f"Jan Golob {RUN}", "details": f"form {RUN}-13"}
WAITING = {"email": f"kaja.turk.{RUN}@example.org", "name": f"Kaja Turk {RUN}", "details": f"note {RUN}-14"}
# A controller's reason that names the subject: it waits on the request for the mail, never in a queue.
REASON = f"Iva Bizjak {RUN} has no account with us"
SUBJECTS = (
    DELIVERED,
    CANCELLED,
    UNVERIFIED,
    HOOK_FAILED,
    MAIL_FAILED,
    PULLED,
    IN_PROGRESS,
    COMPLETED,
    REJECTED,
    PAUSED,
    WAITING,
)
PERSONAL = [value for subject in SUBJECTS for value in subject.values() if value] + [REASON]
REPO = Path(__file__).resolve().parents[2]
NOTIFIER, DISPATCHER = "NotifierFunction", "DispatcherFunction"


def cli(stack, *args: str) -> dict:
    return stack.cli_json(*args)


def register(stack, mode: str) -> str:
    site = f"pii-{mode}-{RUN}"
    cli(
        stack,
        "controllers",
        "add",
        "--name",
        f"Shop {site}",
        "--site",
        site,
        "--contact",
        f"privacy@{site}.example.net",
        "--delivery",
        mode,
    )
    return site


def verify_as(flow: Flow, subject: dict, story: dict, site: str = "demo") -> str:
    """Submit and verify for `subject`, remembering the code and the status token to search for."""
    submitted = flow.submit(subject["email"], site=site, name=subject["name"], details=subject["details"])
    assert submitted.status_code == 202, submitted.text
    request_id = submitted.json()["request_id"]
    code = flow.code(subject["email"])
    story["codes"].append(code)
    verified = flow.verify(request_id, code)
    assert verified.status_code == 200, verified.text
    story["tokens"].append(verified.json()["status_token"])
    return request_id


def fail_attempts(
    flow: Flow, attempts: int, *, delay, logged: str, fragment: str, last_wait: float | None = None
) -> None:
    """Let each failed attempt come back (the clock moves by its retry delay); after the last one
    the clock moves `last_wait` (the queue's own visibility timeout, towards the dead-letter queue)."""
    for attempt in range(1, attempts + 1):
        wait_for(lambda: flow.logged(logged, fragment, f'"attempt":{attempt},'), f"attempt {attempt} to fail")
        flow.stack.advance_past_retry(
            last_wait if attempt == attempts and last_wait is not None else delay(attempt) + 1
        )


@pytest.fixture(scope="module")
def run(launch_stack):
    """The whole story, once; the tests below search what it left."""
    stack = launch_stack()
    flow = Flow(stack)
    api = {"Authorization": f"Bearer {stack.demo_api_key}", "Accept": "application/json"}
    story: dict = {"flow": flow, "tokens": [], "codes": [], "statuses": {}}

    delivered = flow.submit_and_verify(DELIVERED["email"], name=DELIVERED["name"], details=DELIVERED["details"])
    rid = delivered["request_id"]
    story["tokens"].append(delivered["status_token"])
    wait_for(lambda: flow.status(rid) == "delivered", "the webhook delivery")
    seen = stack.get(f"/v1/controller/requests/{rid}", headers=api)
    assert seen.status_code == 200 and DELIVERED["email"] in seen.text, "the controller sees it before the purge"
    assert (
        stack.post(f"/v1/controller/requests/{rid}/status", json={"status": "acknowledged"}, headers=api).status_code
        == 200
    )

    cancelled = flow.submit_and_verify(
        CANCELLED["email"],
        name=CANCELLED["name"],
        details=CANCELLED["details"],
        headers={"Idempotency-Key": f"pii-{RUN}"},
    )
    story["tokens"].append(cancelled["status_token"])
    wait_for(lambda: flow.status(cancelled["request_id"]) == "delivered", "the second delivery")
    assert (
        stack.post(
            f"/v1/requests/{cancelled['request_id']}/cancel",
            headers={"Authorization": f"Bearer {cancelled['status_token']}", "Accept": "application/json"},
        ).status_code
        == 200
    )

    unverified = flow.submit(UNVERIFIED["email"], name=UNVERIFIED["name"])
    assert unverified.status_code == 202
    story["codes"].append(flow.code(UNVERIFIED["email"]))  # its code went out; it is never used

    # An hour after delivery the personal fields go; the controller sees the skeleton only.
    stack.advance_clock(3600 + 60)
    stack.run("RetentionFunction")
    wait_for(lambda: "email" not in (flow.item(rid) or {"email": 1}), "the purge")
    story["purged_at"] = time.time()
    after = stack.get(f"/v1/controller/requests/{rid}", headers=api)
    assert after.status_code == 200 and DELIVERED["email"] not in after.text
    story["controller_view_after_purge"] = after.text

    # Three days before the due date the controller is reminded: a webhook sent after the purge.
    due = datetime.fromisoformat(delivered["due_at"].replace("Z", "+00:00"))
    now = datetime.fromisoformat(stack.clock()["now"].replace("Z", "+00:00"))
    stack.advance_clock((due - timedelta(days=2) - now).total_seconds())
    stack.run("DeadlineWatchFunction")
    wait_for(lambda: flow.deliveries(rid, "dsr.request.overdue"), "the reminder")
    # The unverified request is long past its 72 hours: the sweep deletes it.
    stack.run("RetentionFunction")
    wait_for(lambda: flow.item(unverified.json()["request_id"]) is None, "the unverified request deleted")
    story["unverified_rid"] = unverified.json()["request_id"]
    stack.drain()  # the stream handler audits the deletions
    story["rid"] = rid
    story["statuses"].update({rid: "acknowledged", cancelled["request_id"]: "cancelled"})

    # Through the controller API: in progress, completed, rejected with a reason that names the subject.
    for subject, report in (
        (IN_PROGRESS, {"status": "in_progress"}),
        (COMPLETED, {"status": "completed"}),
        (REJECTED, {"status": "rejected", "reason": REASON}),
    ):
        request_id = verify_as(flow, subject, story)
        wait_for(lambda: flow.status(request_id) == "delivered", "the delivery")
        answer = stack.post(f"/v1/controller/requests/{request_id}/status", json=report, headers=api)
        assert answer.status_code == 200, answer.text
        story["statuses"][request_id] = report["status"]
    rejected_mail = wait_for(
        lambda: [m for m in flow.mails_to(REJECTED["email"]) if REASON in (m["text"] or "")],
        "the rejection's mail, with the reason read at send time",
    )
    assert rejected_mail

    # A pull controller that does not fetch: the request waits, forwarded.
    pulled = verify_as(flow, PULLED, story, site=register(stack, "pull"))
    wait_for(lambda: flow.logged("delivery done", pulled), "the dispatcher to finish")
    story["statuses"][pulled] = "forwarded"

    # A webhook that fails every attempt: delivery_failed, the route message in its dead-letter queue.
    # (Every webhook fails meanwhile, whatever it is about: the count must not depend on other deliveries.)
    stack._ok(stack.post("/_dev/webhooks", json={"fail": {"status": 503, "times": 1000}}))
    hook_failed = verify_as(flow, HOOK_FAILED, story)
    fail_attempts(
        flow,
        delivery.DEFAULT_MAX_ATTEMPTS - 1,
        delay=delivery.retry_delay,
        logged="delivery failed",
        fragment=hook_failed,
    )  # the next, last attempt gives up at once
    wait_for(lambda: flow.status(hook_failed) == "delivery_failed", "delivery_failed after the last attempt")
    wait_for(
        lambda: [b for b in flow.peek("DeliveryDeadLetterQueue") if b.get("request_id") == hook_failed],
        "the route message in the dead-letter queue",
    )
    stack._ok(stack.post("/_dev/webhooks", json={"fail": {"times": 0}}))
    story["statuses"][hook_failed] = "delivery_failed"

    # An email controller whose forwarding mail SES refuses every time (and the subject's confirmation
    # with it): the request is delivery_failed, both mails wait in the mail dead-letter queue.
    mail_site = register(stack, "email")
    submitted = flow.submit(
        MAIL_FAILED["email"], site=mail_site, name=MAIL_FAILED["name"], details=MAIL_FAILED["details"]
    )
    mail_failed = submitted.json()["request_id"]
    code = flow.code(MAIL_FAILED["email"])
    story["codes"].append(code)
    flow.inject(
        {"service": "ses", "operation": "SendRawEmail", "error": "MessageRejected", "times": -1, "function": NOTIFIER}
    )
    verified = flow.verify(mail_failed, code)
    assert verified.status_code == 200
    story["tokens"].append(verified.json()["status_token"])
    wait_for(
        lambda: flow.logged("mail not sent", f"forward-{mail_failed}", '"attempt":1,'), "the forwarding mail tried"
    )
    fail_attempts(
        flow,
        notify.DEFAULT_MAX_ATTEMPTS,
        delay=notify.retry_delay,
        logged="mail not sent",
        fragment=f"forward-{mail_failed}",
        last_wait=91,
    )
    wait_for(lambda: flow.status(mail_failed) == "delivery_failed", "delivery_failed: the mail never went")
    wait_for(
        lambda: f"forward-{mail_failed}" in {b["mail_id"] for b in flow.peek("MailDeadLetterQueue")},
        "the forwarding mail in the dead-letter queue",
    )
    flow.clear_faults()
    story["statuses"][mail_failed] = "delivery_failed"
    story["failed"] = {hook_failed, mail_failed}

    # Left verified (the dispatcher is paused), and left waiting for its code.
    stack._ok(stack.post("/_dev/faults", json={"function": DISPATCHER, "pause": True}))
    paused = verify_as(flow, PAUSED, story)
    story["statuses"][paused] = "verified"
    waiting = flow.submit(WAITING["email"], name=WAITING["name"], details=WAITING["details"])
    story["codes"].append(flow.code(WAITING["email"]))
    story["statuses"][waiting.json()["request_id"]] = "identity_unverified"
    story["waiting_rid"] = waiting.json()["request_id"]
    stack.drain()
    yield story
    stack._ok(stack.post("/_dev/faults", json={"function": DISPATCHER, "pause": False}))


def found_in(text: str, subjects: tuple[dict, ...] | None = None) -> list[str]:
    values = PERSONAL if subjects is None else [v for subject in subjects for v in subject.values() if v]
    return sorted({value for value in values if value in text})


def secrets_in(text: str, story: dict) -> list[str]:
    """Status tokens, and codes as whole numbers (a code's six digits inside a longer number are not it)."""
    tokens = [token for token in story["tokens"] if token in text]
    codes = [code for code in story["codes"] if re.search(rf"(?<![0-9]){code}(?![0-9])", text)]
    return tokens + codes


def test_the_story_reached_every_status_a_request_can_rest_in(run):
    flow = run["flow"]
    seen = {request_id: flow.status(request_id) for request_id in run["statuses"]}
    assert seen == run["statuses"]
    assert set(seen.values()) | {"expired"} >= {
        "identity_unverified",
        "verified",
        "forwarded",
        "acknowledged",
        "in_progress",
        "completed",
        "rejected",
        "delivery_failed",
        "cancelled",
        "expired",
    }
    assert ("identity_unverified", "expired") in [
        (e.get("from_status"), e.get("to_status")) for e in flow.audit(f"REQ#{run['unverified_rid']}")
    ]


def test_no_log_line_or_metric_holds_personal_data(run):
    logs = run["flow"].stack.logs()
    emf = [line for line in logs.splitlines() if line.startswith('{"_aws"')]
    assert emf and '"message":"delivery done"' in logs, "the handlers' logs and metrics were captured"
    assert found_in(logs) == []


def test_no_log_line_holds_a_secret(run):
    lines = [line for line in run["flow"].stack.logs().splitlines() if "(shown once)" not in line]  # the banner
    text = "\n".join(lines)
    assert not [token for token in run["tokens"] if token in text], "a status token reached the logs"
    assert not secrets_in(text, run), "a code or token reached the logs"
    assert "whsec_" not in text and "rdk_" not in text, "a webhook secret or an API key reached the logs"


def test_idempotency_records_hold_no_personal_data(run):
    items = run["flow"].scan("rightsdesk-local-IdempotencyTable")
    assert items, "the submission with an Idempotency-Key, the notifier and the dispatcher keep records"
    assert found_in(json.dumps(items)) == []


def test_after_retention_the_table_holds_addresses_only_as_keyed_hashes(run):
    flow = run["flow"]
    items = flow.scan()
    text = json.dumps(items)
    # The story's later subjects are not past their retention yet: their requests may hold their data.
    assert found_in(text, (DELIVERED, CANCELLED, UNVERIFIED)) == []
    key = flow_hash_key(flow)
    for subject in (DELIVERED, CANCELLED):  # both verified: counted per subject, by keyed hash
        address = subject["email"].strip().casefold()
        keyed = hmac.new(key, f"email\x00{address}".encode(), hashlib.sha256).hexdigest()
        assert keyed in text, "the yearly count keeps the keyed hash"
        for unkeyed in (hashlib.sha256(address.encode()).hexdigest(), hashlib.md5(address.encode()).hexdigest()):
            assert unkeyed not in text, "an unkeyed hash can be reversed by guessing addresses"
    purged = flow.item(run["rid"])
    assert purged["personal_purged_at"] and not {"email", "name", "details"} & purged.keys()


def test_webhooks_after_the_purge_and_the_controller_api_hold_no_personal_data(run):
    flow = run["flow"]
    later = [d for d in flow.stack.webhooks() if d["received_at"] >= run["purged_at"]]
    assert later, "the reminder went out after the purge"
    purged = (DELIVERED, CANCELLED, UNVERIFIED)  # the later subjects' own deliveries carry their data, rightly
    assert found_in(json.dumps([d["body"] for d in later]), purged) == []
    assert found_in(run["controller_view_after_purge"], purged) == []


def test_no_queue_or_dead_letter_queue_holds_personal_data_or_a_secret(run):
    flow = run["flow"]
    urls = flow.sqs.list_queues(QueueNamePrefix="rightsdesk-local-").get("QueueUrls", [])
    assert len(urls) >= 6
    leftovers: dict[str, list[dict]] = {}
    for url in urls:
        name = url.rsplit("/", 1)[1].removeprefix("rightsdesk-local-")
        leftovers[name] = flow.peek(name)
    assert leftovers["MailDeadLetterQueue"] and leftovers["DeliveryDeadLetterQueue"], "the failure paths left messages"
    assert leftovers["DeliveryQueue"], "the paused dispatcher's route message waits"
    text = json.dumps(leftovers)
    assert found_in(text) == [] and "@" not in text, "ids only"
    assert secrets_in(text, run) == []


def test_the_operator_sees_what_never_went(run):
    stack = run["flow"].stack
    listed = {r["request_id"] for r in cli(stack, "requests", "list", "--status", "delivery_failed")["requests"]}
    assert run["failed"] <= listed
    dead = cli(stack, "dlq", "list", "mail")["messages"]
    assert {m.get("kind") for m in dead} >= {"request_forwarded"} and "@" not in json.dumps(dead)


def test_every_mail_message_is_its_kind_and_ids(run):
    flow = run["flow"]
    for name in ("MailQueue", "MailDeadLetterQueue"):
        for body in flow.peek(name):
            assert set(body) == {"mail_id", "kind", "ids"}, body
            assert all(
                isinstance(v, int) or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:#-]{0,127}", v)
                for v in body["ids"].values()
            )


def flow_hash_key(flow: Flow) -> bytes:
    """The stack's hash key as its handlers read it: RIGHTSDESK_HASH_KEY if the stack inherited one
    from this process (tests/unit/conftest.py sets it when both suites run in one session), else
    the secret in its (moto) Secrets Manager."""
    import boto3

    if os.environ.get("RIGHTSDESK_HASH_KEY"):
        return os.environ["RIGHTSDESK_HASH_KEY"].encode()

    secrets = boto3.client(
        "secretsmanager",
        endpoint_url=flow.stack.moto_url,
        region_name="eu-central-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return secrets.get_secret_value(SecretId="rightsdesk-local-HashKeySecret")["SecretString"].encode()
