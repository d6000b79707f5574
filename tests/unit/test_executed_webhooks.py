"""`dsr.request.executed` on the normal delivery path, against moto in-process and a real HTTP endpoint
(tests/unit/test_dispatch.py's world): ids only on the queue, the data built by the dispatcher from
the request's signed receipt, valid against the published schema, no personal data, logged in the
delivery log, retried, redelivered with the same webhook-id, and never another controller's."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from rightsdesk.connectors import receipts
from rightsdesk.kernel import clock
from rightsdesk.outbound import dispatch, executed_webhooks
from rightsdesk.platform import hashing, webhooks
from rightsdesk.routing import delivery_log
from rightsdesk.routing.delivery import DeliveryMessage, RetryLater
from tests.support.openapi import event_problems
from tests.unit import test_dispatch as world
from tests.unit.test_dispatch import Endpoint, controller, verified

cloud, fresh = world.cloud, world.fresh
INVOICES = "HGB §257: invoices, 10 years"


@pytest.fixture(scope="module")
def signer(cloud):
    kms = cloud.session.client("kms")
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    return receipts.KmsSigner(key, client=kms)


def executed(cloud, signer, created) -> tuple[str, str]:
    """A request of `created`'s, delivered, whose execution erased in one store and kept invoices in another."""
    request = verified(cloud, created)
    assert dispatch.dispatch(world.route(request), attempt=1)["result"] == "delivered"
    Endpoint.received.clear()
    now = clock.now()
    common = {
        "action": receipts.Action.ERASE,
        "started_at": now,
        "finished_at": now + timedelta(seconds=1),
        "remaining": 0,
    }
    receipts.record(
        request.request_id,
        receipts.Outcome(
            connector_id="tenant-chats",
            kind="s3",
            result=receipts.Result.DONE,
            counts=receipts.Counts(found=3, erased=3),
            key_hashes=[hashing.keyed_hash("t", str(n)) for n in range(3)],
            **common,
        ),
        signer=signer,
    )
    receipts.record(
        request.request_id,
        receipts.Outcome(
            connector_id="tenant-billing",
            kind="dynamodb",
            result=receipts.Result.KEPT_FOR_LEGAL_BASIS,
            counts=receipts.Counts(found=2, kept=2),
            key_hashes=[hashing.keyed_hash("t", "b")],
            legal_exception=receipts.LegalException(INVOICES, now + timedelta(days=3650), period_days=3650, kept=2),
            **common,
        ),
        signer=signer,
    )
    receipts.seal(request.request_id, signer=signer)
    return request.request_id, hashing.new_id("exe")


def queued_message(cloud) -> DeliveryMessage:
    [body] = cloud.drain("DeliveryQueue")
    assert set(body) == {"event", "controller_id", "request_id", "execution_id"}, "ids only on the queue"
    return DeliveryMessage.from_body(body, message_id="q")


def test_the_event_carries_the_receipts_summary_and_validates(cloud, signer):
    created = controller(cloud)
    request_id, execution_id = executed(cloud, signer, created)
    executed_webhooks.enqueue(request_id=request_id, execution_id=execution_id)
    message = queued_message(cloud)
    assert dispatch.dispatch(message, attempt=1)["result"] == "sent"
    [received] = Endpoint.received
    event = Webhook(created.webhook_secret).verify(received["body"], received["headers"])
    assert event["type"] == webhooks.EVENT_EXECUTED and event_problems(event) == []
    data = event["data"]
    assert (data["request_id"], data["execution_id"], data["controller_id"]) == (
        request_id,
        execution_id,
        created.controller.controller_id,
    )
    assert data["result"] == "done" and data["summary"]["erased"] == 3 and data["summary"]["kept"] == 2
    billing = next(c for c in data["connectors"] if c["connector_id"] == "tenant-billing")
    assert (billing["result"], billing["kept"], billing["legal_exceptions"][0]["basis"]) == (
        "kept_for_legal_basis",
        2,
        INVOICES,
    )
    assert data["receipt"]["sealed"] is True and data["receipt"]["url"].endswith(f"/{request_id}/receipt")
    assert data["receipt"]["head"] == receipts.entries(request_id)[-1].hash
    assert b"ana@example.org" not in received["body"] and b"Ana Novak" not in received["body"]
    page, _ = delivery_log.list_page(
        created.controller.controller_id, delivery_log.Filters(event_type=webhooks.EVENT_EXECUTED), limit=10
    )
    [attempt] = page
    assert (attempt["outcome"], attempt["request_id"], attempt["execution_id"]) == (
        "delivered",
        request_id,
        execution_id,
    )
    # the queue's own retry of a delivered event sends nothing more; a redelivery asked for does, same webhook-id
    assert dispatch.dispatch(message, attempt=2)["result"] == "already_delivered"
    delivery_log.redeliver(created.controller, attempt["webhook_id"])
    again = queued_message_with_redelivery(cloud)
    assert dispatch.dispatch(again, attempt=1)["result"] == "sent"
    assert [r["headers"]["webhook-id"] for r in Endpoint.received] == [attempt["webhook_id"]] * 2


def queued_message_with_redelivery(cloud) -> DeliveryMessage:
    [body] = cloud.drain("DeliveryQueue")
    assert body.get("redelivery_id")
    return DeliveryMessage.from_body(body, message_id="r")


def test_a_failing_endpoint_is_retried_on_the_schedule(cloud, signer):
    created = controller(cloud)
    request_id, execution_id = executed(cloud, signer, created)
    executed_webhooks.enqueue(request_id=request_id, execution_id=execution_id)
    message = queued_message(cloud)
    Endpoint.script = [503]
    with pytest.raises(RetryLater) as retry:
        dispatch.dispatch(message, attempt=1)
    assert retry.value.delay == 5
    assert dispatch.dispatch(message, attempt=2)["result"] == "sent"


def test_another_controllers_request_is_never_sent(cloud, signer):
    owner, other = controller(cloud), controller(cloud)
    request_id, execution_id = executed(cloud, signer, owner)
    forged = {
        "event": webhooks.EVENT_EXECUTED,
        "controller_id": other.controller.controller_id,
        "request_id": request_id,
        "execution_id": execution_id,
    }
    assert dispatch.dispatch(DeliveryMessage.from_body(forged, message_id="f"), attempt=1)["result"] == "gone"
    assert Endpoint.received == []


def test_an_email_controller_gets_no_event(cloud, signer):
    created = controller(cloud, mode="email")
    request = verified(cloud, created)
    executed_webhooks.enqueue(request_id=request.request_id, execution_id="exe_1")
    assert dispatch.dispatch(queued_message(cloud), attempt=1)["result"] == "not_webhook"


@pytest.mark.parametrize(
    "body",
    [
        {"event": webhooks.EVENT_EXECUTED, "controller_id": "ctl_1", "request_id": "dsr_1"},
        {"event": webhooks.EVENT_EXECUTED, "controller_id": "ctl_1", "execution_id": "exe_1"},
        {"event": webhooks.EVENT_EXECUTED, "request_id": "dsr_1", "execution_id": "exe_1"},
        {"event": webhooks.EVENT_EXECUTED, "controller_id": "ctl_1", "request_id": "dsr_1", "execution_id": "a b"},
        {"event": webhooks.EVENT_CONSENT_GPC, "controller_id": "ctl_1", "signal_id": "s1", "execution_id": "exe_1"},
    ],
)
def test_a_malformed_message_is_refused(body):
    with pytest.raises(ValueError):
        DeliveryMessage.from_body(body, message_id="m")


def test_the_delivery_id_is_one_per_execution():
    def message(execution_id: str) -> DeliveryMessage:
        body = {"event": webhooks.EVENT_EXECUTED, "controller_id": "ctl_1", "request_id": "dsr_1"}
        return DeliveryMessage.from_body({**body, "execution_id": execution_id}, message_id="m")

    assert message("exe_1").delivery_id == message("exe_1").delivery_id != message("exe_2").delivery_id
    assert json.dumps(message("exe_1").key()).count("dlv_") == 1
