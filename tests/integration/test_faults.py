"""Fault injection through the local runner (local/faults.py, POST /_dev/faults): DynamoDB throttling
and transaction conflicts, SES rejections, SQS redelivery, and handlers killed between two steps.

After each fault the system recovers by the means it has in production (the SDK's retries, SQS
redelivery on the retry schedule, the deadline watch's re-route), and the last test checks the
whole run: every accepted request is delivered or its message waits in a dead-letter queue that has
an alarm, nothing was delivered twice (one webhook-id, one `delivered` step), and no request is
half-written. test_delivery.py covers a poller killed after whole records and a lost route message;
this module kills handlers *inside* a record and fails single AWS calls.

Its own stack: it moves the clock and leaves faults behind if a test fails midway.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from rightsdesk.outbound import notify
from tests.support.aws import load_template
from tests.support.flows import Flow, wait_for
from tests.support.stack import CLI

pytestmark = pytest.mark.integration

DISPATCHER, PUBLIC_API, NOTIFIER = "DispatcherFunction", "PublicApiFunction", "NotifierFunction"
DEADLINE_WATCH = "DeadlineWatchFunction"  # also queues each verified request's routing and confirmation
QUEUE_VISIBILITY_SECONDS = 540  # template.yaml DeliveryQueue.VisibilityTimeout
ACCEPTED: list[str] = []  # every request id answered 202; the last test accounts for each
DEAD_LETTERED: dict[str, str] = {}  # request id -> address of a verification mail left in the dead-letter queue
TRANSACT = {"service": "dynamodb", "operation": "TransactWriteItems"}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def flow(launch_stack):
    running = launch_stack()
    running.restore_clock_after_each_test = False  # later tests read what earlier ones left, at their time
    yield Flow(running)
    running.stop()


@pytest.fixture(autouse=True)
def no_faults_left(flow):
    yield
    flow.clear_faults()


def accepted(answer: dict) -> str:
    ACCEPTED.append(answer["request_id"])
    return answer["request_id"]


def delivered_once(flow: Flow, request_id: str) -> list[dict]:
    """Delivered, by one logical delivery: every attempt carried the same webhook-id, one status step."""
    wait_for(lambda: flow.status(request_id) == "delivered", f"{request_id} delivered")
    deliveries = flow.deliveries(request_id)
    assert deliveries and all(d["verified"] for d in deliveries)
    assert len({d["webhook_id"] for d in deliveries}) == 1, "a redelivery repeats the same webhook-id"
    assert flow.transitions(request_id).count(("forwarded", "delivered")) == 1
    return deliveries


# ------------------------------------------------------------------ DynamoDB


def test_throttled_writes_are_absorbed_by_the_sdks_retries(flow):
    flow.inject({**TRANSACT, "error": "ProvisionedThroughputExceededException", "times": 2, "function": PUBLIC_API})
    email = flow.new_email()
    answer = flow.submit(email)
    assert answer.status_code == 202, answer.text
    assert flow.faults()[0]["hits"] == 2, "both throttles were answered, and retried by the SDK"
    ACCEPTED.append(answer.json()["request_id"])
    verified = flow.verify(answer.json()["request_id"], flow.code(email))
    assert verified.status_code == 200


def test_throttling_past_the_retries_is_a_503_that_stores_nothing_and_the_retry_counts_once(flow):
    key = f"idem-{time.monotonic_ns()}"
    email = flow.new_email()
    requests_before = sum(1 for item in flow.scan() if item["sk"]["S"] == "REQUEST")
    flow.inject({**TRANSACT, "error": "ProvisionedThroughputExceededException", "times": -1, "function": PUBLIC_API})

    refused = flow.submit(email, headers={"Idempotency-Key": key})
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["error"]["code"] == "unavailable" and "Provisioned" not in refused.text
    assert sum(1 for item in flow.scan() if item["sk"]["S"] == "REQUEST") == requests_before
    flow.clear_faults()

    first, again = (flow.submit(email, headers={"Idempotency-Key": key}) for _ in range(2))
    assert first.status_code == again.status_code == 202
    assert first.json()["request_id"] == again.json()["request_id"]
    assert sum(1 for item in flow.scan() if item["sk"]["S"] == "REQUEST") == requests_before + 1
    ACCEPTED.append(first.json()["request_id"])
    assert flow.verify(first.json()["request_id"], flow.code(email)).status_code == 200
    assert len([m for m in flow.mails_to(email) if "code" in m["text"].lower()]) == 1, "one code, whatever was retried"


def test_a_transaction_conflict_on_the_delivered_step_is_retried_not_mistaken_for_a_change(flow):
    # The dispatcher's first transaction is verified -> forwarded; the second, forwarded -> delivered,
    # meets two conflicts (another writer on the item), which says nothing about the status.
    flow.inject(
        {
            **TRANSACT,
            "error": "TransactionCanceledException",
            "reasons": [None, "TransactionConflict"],
            "skip": 1,
            "times": 2,
            "function": DISPATCHER,
        }
    )
    request_id = accepted(flow.submit_and_verify())
    deliveries = delivered_once(flow, request_id)
    assert len(deliveries) == 1, "retried in place: the controller got it once"


def test_a_conflict_outlasting_the_retries_comes_back_on_the_schedule_with_the_same_webhook_id(flow):
    flow.inject(
        {
            **TRANSACT,
            "error": "TransactionCanceledException",
            "reasons": [None, "TransactionConflict"],
            "skip": 1,
            "times": 3,
            "function": DISPATCHER,
        }
    )
    request_id = accepted(flow.submit_and_verify())
    wait_for(lambda: flow.logged("delivery error", request_id), "the failed attempt")
    assert flow.status(request_id) == "forwarded"
    flow.stack.advance_past_retry(6)  # rightsdesk.routing.delivery.retry_delay(1) is 5 s
    assert len(delivered_once(flow, request_id)) == 2, "at least once: the receiver deduplicates on webhook-id"


def test_a_cancel_racing_the_delivery_wins_by_its_condition(flow):
    """A real conditional-check failure: the subject cancels while the controller is still answering
    the webhook, so the dispatcher's forwarded -> delivered write finds the request cancelled."""
    flow.stack._ok(flow.stack.post("/_dev/webhooks", json={"delay_seconds": 2}))
    try:
        request = flow.submit_and_verify()
        request_id = accepted(request)
        wait_for(lambda: flow.deliveries(request_id), "the webhook, being answered slowly")
        cancelled = flow.stack.post(
            f"/v1/requests/{request_id}/cancel",
            headers={"Authorization": f"Bearer {request['status_token']}", "Accept": "application/json"},
        )
        assert cancelled.status_code == 200, cancelled.text
        wait_for(lambda: flow.logged("delivery done", request_id), "the dispatcher to finish")
    finally:
        flow.stack._ok(flow.stack.post("/_dev/webhooks", json={"delay_seconds": 0}))
    assert flow.logged("delivery done", request_id, '"result":"superseded"')
    assert flow.transitions(request_id)[-2:] == [("verified", "forwarded"), ("forwarded", "cancelled")]
    assert flow.assert_whole(request_id) == "cancelled" and "email" not in flow.item(request_id)
    wait_for(lambda: flow.deliveries(request_id, "dsr.request.cancelled"), "the controller told of the cancel")


# ------------------------------------------------------------------ killed between two steps


def expire_in_progress_records(flow: Flow) -> None:
    """Lambda would have ended the killed invocation at its timeout; powertools lets a retry run once
    that time has passed, by the wall clock, which the local clock cannot move. Time passes here."""
    table = "rightsdesk-local-IdempotencyTable"
    for item in flow.scan(table):
        if item.get("status", {}).get("S") == "INPROGRESS":
            flow.dynamodb.update_item(
                TableName=table,
                Key={"id": item["id"]},
                UpdateExpression="SET in_progress_expiration = :past",
                ExpressionAttributeValues={":past": {"N": "0"}},
            )


def test_a_dispatcher_killed_after_the_webhook_before_its_status_write_delivers_by_redelivery(flow):
    flow.inject({**TRANSACT, "crash": True, "skip": 1, "function": DISPATCHER})
    request_id = accepted(flow.submit_and_verify())
    wait_for(lambda: flow.deliveries(request_id), "the webhook sent before the crash")
    wait_for(lambda: not flow.faults() or flow.faults()[0]["hits"] == 1, "the crash")
    flow.stack.drain()
    assert flow.status(request_id) == "forwarded", "the crash came before the status write"
    flow.assert_whole(request_id)

    expire_in_progress_records(flow)
    flow.stack.advance_clock(QUEUE_VISIBILITY_SECONDS + 1)  # the message returns after the queue's timeout
    assert len(delivered_once(flow, request_id)) == 2


def test_a_public_api_killed_after_verifying_is_routed_by_the_deadline_watch(flow):
    email = flow.new_email()
    submitted = flow.submit(email)
    request_id = submitted.json()["request_id"]
    ACCEPTED.append(request_id)
    code = flow.code(email)
    # Verified is written; the process dies as the transaction's answer comes back. The routing and
    # the confirmation follow from the stored write (the table's stream), not from the dead process.
    flow.inject({**TRANSACT, "crash": "after", "function": PUBLIC_API})
    died = flow.verify(request_id, code)
    assert died.status_code == 502 and died.json()["error"]["code"] == "internal_error"
    flow.clear_faults()
    assert len(delivered_once(flow, request_id)) == 1
    assert flow.assert_whole(request_id) == "delivered"
    wait_for(lambda: flow.logged("mail done", f"verified-{request_id}"), "the confirmation")


def test_a_follow_up_killed_while_queueing_is_retried_from_the_stream(flow):
    """The function that queues a verified request's routing and confirmation dies at its first
    send: the stream hands the record on again, and the request is delivered and confirmed once.
    (A record given up on goes to VerifiedFollowUpDeadLetterQueue; the deadline watch still routes
    the request: test_delivery.py, test_a_request_left_verified_is_routed_again_by_the_deadline_watch.)"""
    email = flow.new_email()
    request_id = flow.submit(email).json()["request_id"]
    ACCEPTED.append(request_id)
    code = flow.code(email)
    flow.inject({"service": "sqs", "operation": "SendMessage", "crash": True, "function": DEADLINE_WATCH})
    assert flow.verify(request_id, code).status_code == 200
    wait_for(lambda: not flow.faults() or flow.faults()[0]["hits"] == 1, "the crash")
    flow.clear_faults()
    assert len(delivered_once(flow, request_id)) == 1
    wait_for(lambda: flow.logged("mail done", f"verified-{request_id}"), "the confirmation")
    flow.stack.drain()
    assert len([m for m in flow.mails_to(email) if f"/status/{request_id}?token=" in (m["text"] or "")]) == 1


# ------------------------------------------------------------------ SES and SQS


def test_ses_rejecting_a_mail_once_sends_it_once_on_the_retry(flow):
    flow.inject({"service": "ses", "operation": "SendRawEmail", "error": "MessageRejected", "function": NOTIFIER})
    email = flow.new_email()
    request_id = flow.submit(email).json()["request_id"]
    ACCEPTED.append(request_id)
    wait_for(lambda: flow.logged("mail not sent", f"verify-{request_id}"), "the rejected send")
    assert not flow.mails_to(email)
    flow.stack.advance_past_retry(notify.retry_delay(1) + 1)
    assert flow.verify(request_id, flow.code(email)).status_code == 200
    assert len([m for m in flow.mails_to(email) if "code" in m["text"].lower()]) == 1


def test_ses_rejecting_every_attempt_leaves_the_mail_in_its_dead_letter_queue(flow):
    flow.inject(
        {"service": "ses", "operation": "SendRawEmail", "error": "MessageRejected", "times": -1, "function": NOTIFIER}
    )
    email = flow.new_email()
    request_id = flow.submit(email).json()["request_id"]
    ACCEPTED.append(request_id)
    for attempt in range(1, notify.DEFAULT_MAX_ATTEMPTS + 1):
        wait_for(
            lambda: flow.logged("mail not sent", f"verify-{request_id}", f'"attempt":{attempt},'),
            f"attempt {attempt} to fail",
        )
        # A failed attempt comes back after its retry delay; the last one after the queue's own timeout.
        flow.stack.advance_past_retry(notify.retry_delay(attempt) + 1 if attempt < notify.DEFAULT_MAX_ATTEMPTS else 91)
    dead = wait_for(
        lambda: [b for b in flow.peek("MailDeadLetterQueue") if b["mail_id"] == f"verify-{request_id}"],
        "the mail in the dead-letter queue",
    )
    assert len(dead) == 1 and not flow.mails_to(email)
    assert email not in json.dumps(dead), "the dead letter names the request, not the address"
    DEAD_LETTERED[request_id] = email


def test_a_redelivered_message_is_acted_on_once(flow):
    request = flow.submit_and_verify()
    request_id = accepted(request)
    delivered_once(flow, request_id)
    mails = len(flow.mails_to(request["email"]))
    # At-least-once delivery: the same route message and the same verification mail arrive again.
    flow.sqs.send_message(
        QueueUrl=flow.queue_url("DeliveryQueue"), MessageBody=json.dumps({"request_id": request_id, "event": "route"})
    )
    flow.sqs.send_message(
        QueueUrl=flow.queue_url("MailQueue"),
        MessageBody=json.dumps(
            {"mail_id": f"verify-{request_id}", "kind": "verification_code", "ids": {"request_id": request_id}}
        ),
    )
    wait_for(
        lambda: flow.logged("delivery done", request_id) and flow.stack.logs().count(request_id) > 1,
        "the duplicate handled",
    )
    flow.stack.drain()
    assert len(flow.deliveries(request_id)) == 1
    assert len(flow.mails_to(request["email"])) == mails


# ------------------------------------------------------------------ the operator's redrive


def rightsdesk(flow: Flow, *args: str) -> dict:
    env = {**os.environ, "RIGHTSDESK_LOCAL_MOTO_URL": flow.stack.moto_url, "RIGHTSDESK_LOCAL_URL": flow.stack.base_url}
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "RIGHTSDESK_TABLE", "RIGHTSDESK_STACK"):
        env.pop(name, None)
    result = subprocess.run(
        [*CLI, "--local", *args, "--json"], capture_output=True, text=True, timeout=60, env=env, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    return {"json": json.loads(result.stdout), "stdout": result.stdout}


def test_the_cli_lists_dead_letters_by_id_only_and_redrives_them_to_delivery(flow):
    dead = [
        b
        for b in flow.peek("MailDeadLetterQueue")
        if b["kind"] == "verification_code" and b["ids"]["request_id"] in DEAD_LETTERED
    ]
    assert dead, "the SES test above left a verification mail in the dead-letter queue"
    address = DEAD_LETTERED[dead[0]["ids"]["request_id"]]  # the queue holds no address: the test remembers it

    depths = {q["queue"]: q["messages"] for q in rightsdesk(flow, "dlq", "list")["json"]["queues"]}
    assert depths["MailDeadLetterQueue"] >= 1 and "DeliveryDeadLetterQueue" in depths
    listed = rightsdesk(flow, "dlq", "list", "mail")
    assert {m["mail_id"] for m in listed["json"]["messages"]} >= {dead[0]["mail_id"]}
    assert address not in listed["stdout"] and '"to"' not in listed["stdout"], "ids only, never a body"

    moved = rightsdesk(flow, "dlq", "redrive", "MailDeadLetterQueue", "--yes")["json"]
    assert moved["to"] == "rightsdesk-local-MailQueue" and moved["moved"] >= 1
    request_id = dead[0]["mail_id"].removeprefix("verify-")
    assert flow.verify(request_id, flow.code(address)).status_code == 200, "the code arrived after the redrive"
    assert len(delivered_once(flow, request_id)) == 1


# ------------------------------------------------------------------ after all of it


def test_every_accepted_request_is_delivered_or_dead_lettered_once_and_whole(flow):
    assert len(ACCEPTED) >= 8, "the tests above ran first"
    dead_mail = {body["mail_id"] for body in flow.peek("MailDeadLetterQueue")}
    dead_delivery = {body.get("request_id") for body in flow.peek("DeliveryDeadLetterQueue")}
    for request_id in ACCEPTED:
        status = flow.assert_whole(request_id)
        if status == "delivered":
            delivered_once(flow, request_id)
        elif status == "cancelled":
            assert flow.transitions(request_id).count(("forwarded", "delivered")) == 0
        elif status == "delivery_failed":
            assert request_id in dead_delivery
        else:
            # Never verified because its code never went out: the mail waits in the dead-letter queue.
            assert status == "identity_unverified" and f"verify-{request_id}" in dead_mail, (request_id, status)
    assert all(dlq in _alarmed_queues() for dlq in ("MailDeadLetterQueue", "DeliveryDeadLetterQueue"))


def _alarmed_queues() -> set[str]:
    """Queues whose depth an alarm of the template watches, and that alarm notifies someone."""
    alarmed = set()
    for resource in load_template()["Resources"].values():
        props = resource.get("Properties") or {}
        if (
            resource["Type"] == "AWS::CloudWatch::Alarm"
            and props.get("Namespace") == "AWS/SQS"
            and props.get("AlarmActions")
        ):
            for dimension in props.get("Dimensions") or []:
                alarmed.add(dimension["Value"]["Fn::GetAtt"][0])
    return alarmed
