"""The delivery log and self-serve redelivery end to end through the local runner, over HTTP: an
endpoint that fails, the attempts in GET /v1/controller/deliveries, a redelivery once it is fixed
(asked twice, queued once), everything that failed since a time, a 410 and the re-enabling test,
the purge rule, the operator's CLI reading the same log, and another controller seeing none of it
(404, not 403). One story on the shared stack, its own controllers and requests."""

from __future__ import annotations

import json

import pytest

from rightsdesk.kernel import clock
from tests.support.flows import Flow, wait_for
from tests.support.stack import OwnController, RunningStack, deliveries_to, register_controller

pytestmark = pytest.mark.integration

LOG = "/v1/controller/deliveries"


def attempts(stack: RunningStack, controller: OwnController, **query) -> list[dict]:
    answer = stack.get(LOG, headers=controller.auth, params=query)
    assert answer.status_code == 200, answer.text
    return answer.json()["deliveries"]


def of_request(stack, controller, request_id: str, **query) -> list[dict]:
    return [a for a in attempts(stack, controller, **query) if a["request_id"] == request_id]


def fail_next(stack: RunningStack, status: int, times: int = 1) -> None:
    stack.drain()  # nothing of an earlier step still on its way to the receiver
    stack._ok(stack.post("/_dev/webhooks", json={"fail": {"status": status, "times": times}}))


def redeliver(stack, controller, webhook_id: str):
    return stack.post(f"{LOG}/{webhook_id}/redeliver", headers=controller.auth)


def test_a_failing_endpoint_its_log_redelivery_and_re_enabling(stack):
    shop = register_controller(stack, tag="dlog")
    other = register_controller(stack, tag="dlog-other")
    flow = Flow(stack, shop.site)

    # An endpoint down: the attempt is logged with its status and error class, no body.
    fail_next(stack, 503)
    first = flow.submit_and_verify()["request_id"]
    [failed] = wait_for(lambda: of_request(stack, shop, first, status="retrying"), "the failed attempt in the log")
    assert (failed["http_status"], failed["error_class"], failed["attempt"]) == (503, "http_5xx", 1)
    assert set(failed) >= {"attempted_at", "latency_ms", "webhook_id", "event_type", "outcome"}
    assert "body" not in failed and "data" not in json.dumps(failed)
    bounded = attempts(
        stack, shop, since="2020-01-01T00:00:00Z", until="2999-01-01T00:00:00Z", event_type="dsr.request.forwarded"
    )
    assert failed["attempt_id"] in {a["attempt_id"] for a in bounded}
    assert stack.get(LOG, headers=shop.auth, params={"since": "soon"}).status_code == 422

    # Another controller sees none of it and cannot redeliver it: 404, not 403.
    assert [a for a in attempts(stack, other) if a["request_id"] == first] == []
    refused = redeliver(stack, other, failed["webhook_id"])
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"

    # Fixed: redelivered once however often it is asked, with the webhook-id the receiver knows.
    # The dispatcher is held (it dies at its first table call) while both asks are made: otherwise it
    # may carry out the first redelivery in between, whose attempt clears the waiting mark, and the
    # second ask is then rightly queued anew.
    held = [
        {"service": "dynamodb", "operation": op, "crash": True, "function": "DispatcherFunction", "times": -1}
        for op in ("GetItem", "PutItem")
    ]
    stack._ok(stack.post("/_dev/faults", json={"aws": held}))
    try:
        asked = [redeliver(stack, shop, failed["webhook_id"]) for _ in range(2)]
    finally:
        stack._ok(stack.http.delete(f"{stack.base_url}/_dev/faults", timeout=10))
    assert [a.status_code for a in asked] == [202, 202]
    assert [a.json()["status"] for a in asked] == ["queued", "already_queued"]
    stack.advance_past_retry(900)  # the held attempt's message comes back after the queue's 540 s visibility timeout
    stack.drain()
    delivered = wait_for(
        lambda: [a for a in of_request(stack, shop, first, status="delivered") if a["redelivery"]], "the redelivery"
    )
    assert len(delivered) == 1
    received = [
        d for d in deliveries_to(stack, shop, "dsr.request.forwarded") if d["body"]["data"]["request_id"] == first
    ]
    assert {d["webhook_id"] for d in received} == {failed["webhook_id"]}
    assert received[-1]["verified"] is True and received[-1]["answered"] == 204
    assert flow.status(first) == "delivered"

    # A day's outage in small: every delivery that failed since then, in one call.
    since = clock.isoformat(clock.now())
    fail_next(stack, 500, times=2)
    failing = [flow.submit_and_verify()["request_id"] for _ in range(2)]
    wait_for(lambda: all(of_request(stack, shop, r, status="retrying") for r in failing), "two failed deliveries")
    bulk = stack.post(f"{LOG}/redeliver", headers=shop.auth, json={"since": since})
    assert bulk.status_code == 202, bulk.text
    assert len(bulk.json()["queued"]) == 2 and bulk.json()["more"] is False
    stack.drain()
    wait_for(lambda: all(flow.status(r) == "delivered" for r in failing), "both delivered")
    bad = stack.post(f"{LOG}/redeliver", headers=shop.auth, json={"since": "yesterday"})
    assert bad.status_code == 422

    # The operator's CLI reads the same log.
    listed = stack.cli_json("controllers", "deliveries", shop.controller_id, "--status", "delivered")["deliveries"]
    assert {a["attempt_id"] for a in listed} == {a["attempt_id"] for a in attempts(stack, shop, status="delivered")}

    # A 410 disables the endpoint; a test event it accepts enables it again.
    fail_next(stack, 410)
    gone = flow.submit_and_verify()["request_id"]
    state = wait_for(
        lambda: (s := stack.get("/v1/controller/webhook", headers=shop.auth).json())["state"] == "disabled" and s,
        "the endpoint disabled",
    )
    assert state["disabled_reason"] == "gone_410" and state["last_attempt"]["error_class"] == "gone"
    wait_for(lambda: flow.status(gone) == "delivered", "the request delivered by email meanwhile")
    assert redeliver(stack, shop, failed["webhook_id"]).json()["error"]["code"] == "webhook_disabled"
    plain_test = stack.post("/v1/controller/webhook/test", headers=shop.auth)
    assert plain_test.status_code == 409 and plain_test.json()["error"]["code"] == "webhook_disabled"
    enabling = stack.post("/v1/controller/webhook/enable", headers=shop.auth)
    assert enabling.status_code == 202, enabling.text
    stack.drain()
    wait_for(
        lambda: stack.get("/v1/controller/webhook", headers=shop.auth).json()["state"] == "enabled", "enabled again"
    )
    assert [d["body"]["type"] for d in deliveries_to(stack, shop)][-1] == "webhook.test"

    # Once the personal fields are purged (an hour after delivery) they are not sent again.
    stack.advance_clock(2 * 3600)
    purged = redeliver(stack, shop, failed["webhook_id"])
    assert purged.status_code == 409
    assert purged.json()["error"]["code"] == "purged"
    assert purged.json()["error"]["fields"] == {"email": "purged", "name": "purged", "details": "purged"}


def test_the_operators_cli_pages_through_the_log_as_the_api_does(stack):
    """`rightsdesk controllers deliveries --limit/--cursor` signs and reads the listing's cursor with
    the stack's hash key, as the API does: a page with more behind it, and the next one, work."""
    shop = register_controller(stack, tag="dlog-pages")
    for _ in range(3):
        assert stack.post("/v1/controller/webhook/test", headers=shop.auth).status_code == 202
        stack.drain()
    wait_for(lambda: len(attempts(stack, shop)) == 3, "three test attempts in the log")

    first = stack.cli_json("controllers", "deliveries", shop.controller_id, "--limit", "2")
    assert len(first["deliveries"]) == 2 and first["next_cursor"]
    rest = stack.cli_json(
        "controllers", "deliveries", shop.controller_id, "--limit", "2", "--cursor", first["next_cursor"]
    )
    assert rest["next_cursor"] is None
    seen = [a["attempt_id"] for a in first["deliveries"] + rest["deliveries"]]
    assert seen == [a["attempt_id"] for a in attempts(stack, shop)]  # newest first, each once

    # The CLI's cursor is the API's: the controller continues the operator's page.
    api_rest = stack.get(LOG, headers=shop.auth, params={"limit": 2, "cursor": first["next_cursor"]})
    assert [a["attempt_id"] for a in api_rest.json()["deliveries"]] == [a["attempt_id"] for a in rest["deliveries"]]
