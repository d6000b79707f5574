"""Global Privacy Control through the local runner, over real HTTP: `Sec-GPC: 1` on a submission
becomes a withdrawal in the consent ledger once the address is verified; a controller forwards a
visitor's signal and gets `consent.gpc` on its webhook, valid against the catalog's schema, once;
another controller sees nothing of it; `/.well-known/gpc.json` is served."""

from __future__ import annotations

import uuid

import pytest

from tests.support.flows import JSON, Flow, wait_for
from tests.support.openapi import event_problems
from tests.support.stack import deliveries_to, register_controller

pytestmark = pytest.mark.integration

GPC = {"sale_share", "cross_context_advertising"}


def _ledger(stack, email: str) -> dict[str, dict]:
    return {c["purpose"]: c for c in stack.cli_json("consents", "show", "--email", email)["consents"]}


def test_well_known_gpc_json_says_the_signal_is_honoured(stack):
    answer = stack.get("/.well-known/gpc.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert "max-age" in answer.headers.get("cache-control", "")
    body = answer.json()
    assert body["gpc"] is True and len(body["lastUpdate"]) == 10


def test_sec_gpc_1_withdraws_sale_share_and_advertising_after_verification_only(stack, own_controller):
    flow = Flow(stack, own_controller.site)
    email = flow.new_email("gpc")
    submitted = flow.submit(email, headers={"Sec-GPC": "1 "})
    assert submitted.status_code == 202, submitted.text
    stack.drain()
    assert _ledger(stack, email) == {}, "an unverified address records nothing"

    verified = flow.verify(submitted.json()["request_id"], flow.code(email))
    assert verified.status_code == 200, verified.text
    stack.drain()
    ledger = wait_for(lambda: _ledger(stack, email) or None, "the withdrawal in the ledger")
    assert set(ledger) == GPC
    for entry in ledger.values():
        assert (entry["state"], entry["withdrawn_source"]) == ("withdrawn", "gpc")
        assert entry["history"][-1]["ref"] == f"request:{submitted.json()['request_id']}"


@pytest.mark.parametrize("value", ["0", "true", "1, 1", ""])
def test_any_other_header_value_records_nothing(stack, own_controller, value):
    flow = Flow(stack, own_controller.site)
    email = flow.new_email("nogpc")
    flow.submit_and_verify(email, headers={"Sec-GPC": value})
    stack.drain()
    assert _ledger(stack, email) == {}


def test_a_forwarded_signal_reaches_its_controller_once_and_no_other(stack, own_controller):
    other = register_controller(stack)
    visitor = f"v-{uuid.uuid4().hex[:16]}"
    first = stack.post("/v1/controller/gpc", headers={**own_controller.auth}, json={"visitor_id": visitor})
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["status"] == "recorded" and set(answer["purposes"]) == GPC and answer["source"] == "gpc"
    again = stack.post("/v1/controller/gpc", headers={**own_controller.auth}, json={"visitor_id": visitor})
    assert again.json()["status"] == "already_recorded"
    assert again.json()["signal_id"] == answer["signal_id"]
    stack.drain()

    [delivery] = wait_for(lambda: deliveries_to(stack, own_controller, "consent.gpc"), "the consent.gpc event")
    assert delivery["verified"] is True
    assert event_problems(delivery["body"]) == []
    assert delivery["body"]["data"]["signal_id"] == answer["signal_id"]
    assert visitor not in str(delivery["body"]), "the event names the visitor by its signal id only"
    assert deliveries_to(stack, other, "consent.gpc") == []
    logged = stack.get("/v1/controller/deliveries", headers=other.auth, params={"event_type": "consent.gpc"})
    assert logged.ok and logged.json()["deliveries"] == []
    mine = stack.get("/v1/controller/deliveries", headers=own_controller.auth, params={"event_type": "consent.gpc"})
    assert [d["signal_id"] for d in mine.json()["deliveries"]] == [answer["signal_id"]]

    # the other controller's same visitor id is its own signal
    theirs = stack.post("/v1/controller/gpc", headers=other.auth, json={"visitor_id": visitor})
    assert theirs.json()["status"] == "recorded" and theirs.json()["signal_id"] != answer["signal_id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"visitor_id": "short"}, "visitor_id"),
        ({"visitor_id": "someone@example.org"}, "visitor_id"),
        ({"visitor_id": "v-1234567890", "extra": 1}, "extra"),
        ({}, "visitor_id"),
    ],
)
def test_a_bad_forward_is_a_422_and_stores_nothing(stack, own_controller, body, field):
    refused = stack.post("/v1/controller/gpc", headers=own_controller.auth, json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "invalid_input"
    assert any(field in name for name in refused.json()["error"].get("fields", {})), refused.json()


def test_forwarding_needs_a_key(stack):
    assert stack.post("/v1/controller/gpc", headers=JSON, json={"visitor_id": "v-1234567890"}).status_code in (
        401,
        403,
    )
