"""No personal data anywhere it should not be: one run with known subjects through the whole local
stack, then a search of everything it left behind.

The subjects: one whose request is delivered to the demo controller's webhook, read through the
controller API, purged an hour after delivery and later reminded about (a webhook after the purge);
one who cancels; one who never verifies (deleted after 72 hours). Where DESIGN.md lets their
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
import time
from datetime import datetime, timedelta

import pytest

from tests.support.flows import Flow, wait_for

pytestmark = pytest.mark.integration

RUN = str(int(time.time()))
DELIVERED = {"email": f"ana.novak.{RUN}@example.org", "name": f"Ana Novak {RUN}", "details": f"chat of {RUN} May"}
CANCELLED = {"email": f"bor.kos.{RUN}@example.org", "name": f"Bor Kos {RUN}", "details": f"order {RUN}"}
UNVERIFIED = {"email": f"cene.vidmar.{RUN}@example.org", "name": f"Cene Vidmar {RUN}", "details": None}
SUBJECTS = (DELIVERED, CANCELLED, UNVERIFIED)
PERSONAL = [value for subject in SUBJECTS for value in subject.values() if value]


@pytest.fixture(scope="module")
def run(launch_stack):
    """The whole story, once; the tests below search what it left."""
    stack = launch_stack()
    flow = Flow(stack)
    api = {"Authorization": f"Bearer {stack.demo_api_key}", "Accept": "application/json"}
    story: dict = {"flow": flow, "tokens": []}

    delivered = flow.submit_and_verify(DELIVERED["email"], name=DELIVERED["name"], details=DELIVERED["details"])
    rid = delivered["request_id"]
    story["tokens"].append(delivered["status_token"])
    wait_for(lambda: flow.status(rid) == "delivered", "the webhook delivery")
    seen = stack.get(f"/v1/controller/requests/{rid}", headers=api)
    assert seen.status_code == 200 and DELIVERED["email"] in seen.text, "the controller sees it before the purge"
    assert stack.post(f"/v1/controller/requests/{rid}/status", json={"status": "acknowledged"},
                      headers=api).status_code == 200

    cancelled = flow.submit_and_verify(CANCELLED["email"], name=CANCELLED["name"], details=CANCELLED["details"],
                                       headers={"Idempotency-Key": f"pii-{RUN}"})
    story["tokens"].append(cancelled["status_token"])
    wait_for(lambda: flow.status(cancelled["request_id"]) == "delivered", "the second delivery")
    assert stack.post(f"/v1/requests/{cancelled['request_id']}/cancel", headers={
        "Authorization": f"Bearer {cancelled['status_token']}", "Accept": "application/json"}).status_code == 200

    unverified = flow.submit(UNVERIFIED["email"], name=UNVERIFIED["name"])
    assert unverified.status_code == 202
    flow.code(UNVERIFIED["email"])  # its code went out; it is never used

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
    stack.settle()  # the stream handler audits the deletions
    story["rid"] = rid
    yield story


def found_in(text: str) -> list[str]:
    return sorted({value for value in PERSONAL if value in text})


def test_no_log_line_or_metric_holds_personal_data(run):
    logs = run["flow"].stack.logs()
    emf = [line for line in logs.splitlines() if line.startswith('{"_aws"')]
    assert emf and '"message":"delivery done"' in logs, "the handlers' logs and metrics were captured"
    assert found_in(logs) == []


def test_no_log_line_holds_a_secret(run):
    lines = [line for line in run["flow"].stack.logs().splitlines() if "(shown once)" not in line]  # the banner
    text = "\n".join(lines)
    assert not [token for token in run["tokens"] if token in text], "a status token reached the logs"
    assert "whsec_" not in text and "rdk_" not in text, "a webhook secret or an API key reached the logs"


def test_idempotency_records_hold_no_personal_data(run):
    items = run["flow"].scan("rightsdesk-local-IdempotencyTable")
    assert items, "the submission with an Idempotency-Key, the notifier and the dispatcher keep records"
    assert found_in(json.dumps(items)) == []


def test_after_retention_the_table_holds_addresses_only_as_keyed_hashes(run):
    flow = run["flow"]
    items = flow.scan()
    text = json.dumps(items)
    assert found_in(text) == []
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
    assert found_in(json.dumps([d["body"] for d in later])) == []
    assert found_in(run["controller_view_after_purge"]) == []


def test_no_queue_holds_personal_data_once_the_work_is_done(run):
    flow = run["flow"]
    urls = flow.sqs.list_queues(QueueNamePrefix="rightsdesk-local-").get("QueueUrls", [])
    assert len(urls) >= 6
    leftovers = []
    for url in urls:
        leftovers += flow.peek(url.rsplit("/", 1)[1].removeprefix("rightsdesk-local-"))
    assert found_in(json.dumps(leftovers)) == []


def flow_hash_key(flow: Flow) -> bytes:
    """The stack's hash key as its handlers read it: RIGHTSDESK_HASH_KEY if the stack inherited one
    from this process (tests/unit/conftest.py sets it when both suites run in one session), else
    the secret in its (moto) Secrets Manager."""
    import os

    import boto3

    if os.environ.get("RIGHTSDESK_HASH_KEY"):
        return os.environ["RIGHTSDESK_HASH_KEY"].encode()

    secrets = boto3.client("secretsmanager", endpoint_url=flow.stack.moto_url, region_name="eu-central-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
    return secrets.get_secret_value(SecretId="rightsdesk-local-HashKeySecret")["SecretString"].encode()
