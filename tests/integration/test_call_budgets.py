"""How many AWS calls a submission, a verification, its follow-up and a delivery make, held to their budgets
(bench/aws_calls.py counts them the same way for docs/benchmarks.md): every call the handler
makes, idempotency, rate counters, KMS and queue sends included, the runner's polling not. A
call added on any of the paths fails here.

The calls were cut partly by keeping controller records in warm containers for up to a minute;
where security depends on the controller (the authorizer's key check, the dispatcher's endpoint,
secret and state) a change takes effect on the very next request or delivery, whatever the
containers remember. On a stack of its own, which records its calls (local/calls.py).
"""

from __future__ import annotations

import pytest

from bench import aws_calls
from tests.support.flows import JSON, Flow, wait_for
from tests.support.stack import deliveries_to, register_controller

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def recording(launch_stack, tmp_path_factory):
    path = tmp_path_factory.mktemp("calls") / "calls.jsonl"
    stack = launch_stack(env={"RIGHTSDESK_LOCAL_RECORD_CALLS": str(path)})
    yield stack, path
    stack.stop()


@pytest.fixture(scope="module")
def counted(recording) -> dict[str, aws_calls.Step]:
    stack, path = recording
    return {step.name: step for step in aws_calls.measure(stack.base_url, path)}


@pytest.mark.parametrize("operation", sorted(aws_calls.BUDGETS))
def test_each_operation_stays_within_its_budget(counted, operation):
    step = counted[operation]
    assert step.total <= aws_calls.BUDGETS[operation], f"{operation}: {step.total} calls, {dict(step.calls)}"


def test_the_count_sees_the_calls_each_operation_cannot_do_without(counted):
    """A count of nothing would hold any budget: each step shows the writes it must make."""
    assert counted["submission"].calls["dynamodb.TransactWriteItems"] == 1
    assert counted["submission"].calls["dynamodb.UpdateItem"] == 1, "the source's counter, a write of its own"
    assert counted["submission"].calls["sqs.SendMessage"] == 1  # the code's mail
    verification = counted["verification"].calls
    assert verification["dynamodb.UpdateItem"] == 1, "the attempt is spent by a write of its own"
    assert verification["dynamodb.TransactWriteItems"] == 1  # the transition, its audit event, the yearly count
    assert "sqs.SendMessage" not in verification, "the routing and the confirmation follow from the stream"
    assert counted["follow-up"].calls["sqs.SendMessage"] == 2  # the routing and the confirmation
    delivery = counted["delivery"].calls
    assert delivery["dynamodb.PutItem"] == 1 and delivery["dynamodb.UpdateItem"] == 1, "idempotency is on"
    assert delivery["dynamodb.TransactWriteItems"] == 2, "forwarded, then delivered: each a conditional transition"


def test_a_transaction_is_one_call_however_many_items_it_writes(recording, counted):
    _, path = recording
    rows = [row for row in aws_calls.read_rows(path) if row.get("operation") == "TransactWriteItems"]
    calls = {row["call"] for row in rows}
    assert rows and len(calls) < len(rows), "a transaction's items are rows of one call"
    assert all(row["action"] in ("PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem") for row in rows)


# ------------------------------------------------------------------ changes take effect at once


def _submit_and_verify(stack, site: str) -> str:
    return Flow(stack, site).submit_and_verify()["request_id"]


def test_a_new_webhook_secret_signs_the_very_next_delivery(recording, counted):
    """The operator's CLI (another process, as another container would be) replaces the secret:
    the dispatcher, warm from a delivery a moment ago, signs the next one with the new secret."""
    stack, _ = recording
    controller = register_controller(stack, tag="rotated")
    _submit_and_verify(stack, controller.site)
    wait_for(lambda: deliveries_to(stack, controller, "dsr.request.forwarded"), "the first delivery")
    url = f"{stack.receiver_url}{controller.webhook_path}"
    stack.cli("controllers", "set-delivery", controller.controller_id, "--delivery", "email")
    changed = stack.cli_json(
        "controllers", "set-delivery", controller.controller_id, "--delivery", "webhook", "--webhook-url", url
    )
    # The receiver now knows the new secret only: a delivery signed as before would be refused (401).
    stack._ok(stack.post("/_dev/webhooks", json={"secret": changed["webhook_secret"], "path": controller.webhook_path}))
    second = _submit_and_verify(stack, controller.site)
    stack.drain()
    received = wait_for(
        lambda: [
            d
            for d in deliveries_to(stack, controller, "dsr.request.forwarded")
            if d["body"]["data"]["request_id"] == second
        ],
        "the second delivery",
    )
    assert (received[0]["verified"], received[0]["answered"]) == (True, 204), "signed with the new secret at once"


def test_a_controller_switched_to_email_gets_the_very_next_request_by_email(recording, counted):
    stack, _ = recording
    controller = register_controller(stack, tag="switched")
    _submit_and_verify(stack, controller.site)
    wait_for(lambda: deliveries_to(stack, controller, "dsr.request.forwarded"), "a delivery by webhook")
    stack.cli("controllers", "set-delivery", controller.controller_id, "--delivery", "email")
    request_id = _submit_and_verify(stack, controller.site)
    wait_for(
        lambda: [m for m in stack.outbox() if controller.contact in m["to"] and request_id in (m["text"] or "")],
        "the request by email",
    )
    stack.drain()
    assert [d for d in deliveries_to(stack, controller) if d["body"]["data"].get("request_id") == request_id] == []


def test_a_disabled_controllers_next_delivery_attempt_goes_to_its_contact(recording, counted):
    """A delivery failed once and waits for its retry; the operator disables the controller (its
    endpoint is not trusted any more): the retry goes to the privacy contact by email."""
    stack, _ = recording
    controller = register_controller(stack, tag="disabled")
    _submit_and_verify(stack, controller.site)
    wait_for(lambda: deliveries_to(stack, controller, "dsr.request.forwarded"), "a delivery by webhook")
    stack._ok(stack.post("/_dev/webhooks", json={"fail": {"status": 500, "times": 1}}))
    request_id = _submit_and_verify(stack, controller.site)
    wait_for(
        lambda: [d for d in deliveries_to(stack, controller) if d["body"]["data"].get("request_id") == request_id],
        "the failed attempt",
    )
    stack.cli("controllers", "disable", controller.controller_id)
    stack.advance_past_retry(10)
    wait_for(
        lambda: [m for m in stack.outbox() if controller.contact in m["to"] and request_id in (m["text"] or "")],
        "the retry by email",
    )
    stack.drain()
    attempts = [d for d in deliveries_to(stack, controller) if d["body"]["data"].get("request_id") == request_id]
    assert [d["answered"] for d in attempts] == [500], "no second POST to the endpoint"


def test_an_endpoint_that_answered_410_gets_no_further_delivery(recording, counted):
    stack, _ = recording
    controller = register_controller(stack, tag="gone")
    stack._ok(stack.post("/_dev/webhooks", json={"fail": {"status": 410, "times": 1}}))
    _submit_and_verify(stack, controller.site)
    wait_for(lambda: deliveries_to(stack, controller, "dsr.request.forwarded"), "the delivery answered 410")
    stack.drain()
    request_id = _submit_and_verify(stack, controller.site)
    wait_for(
        lambda: [m for m in stack.outbox() if controller.contact in m["to"] and request_id in (m["text"] or "")],
        "the next request by email",
    )
    stack.drain()
    assert len(deliveries_to(stack, controller)) == 1, "nothing more was posted to the endpoint"


def test_a_rotated_or_disabled_api_key_is_refused_on_the_very_next_request(recording, counted):
    stack, _ = recording
    controller = register_controller(stack, "pull", tag="keys")
    listing = "/v1/controller/requests"
    assert stack.get(listing, headers=controller.auth).status_code == 200  # the authorizer is warm
    new_key = stack.cli_json("controllers", "rotate-key", controller.controller_id)["api_key"]
    assert stack.get(listing, headers=controller.auth).status_code == 401, "the old key, at once"
    new_auth = {"Authorization": f"Bearer {new_key}", **JSON}
    assert stack.get(listing, headers=new_auth).status_code == 200
    stack.cli("controllers", "disable", controller.controller_id)
    assert stack.get(listing, headers=new_auth).status_code == 401, "a disabled controller's key, at once"
