"""`rightsdesk --local` as an operator runs it: a subprocess against the local runner over HTTP."""

from __future__ import annotations

import getpass
import json
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support.stack import OwnController

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
UNVERIFIED_KEEP_SECONDS = 72 * 3600


def rightsdesk(stack, *args: str) -> subprocess.CompletedProcess:
    return stack.cli(*args, check=False)


def submit(stack, controller: OwnController) -> tuple[str, str]:
    email = f"cli-{uuid.uuid4().hex[:10]}@example.org"
    response = stack.post("/v1/requests", json={"site": controller.site, "type": "access", "email": email})
    assert response.status_code == 202, response.text
    return response.json()["request_id"], email


def listed(stack, controller: OwnController) -> dict:
    result = rightsdesk(stack, "requests", "list", "--controller", controller.controller_id, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_submitted_request_is_listed_without_its_address(stack, own_controller):
    request_id, email = submit(stack, own_controller)

    result = rightsdesk(stack, "requests", "list", "--controller", own_controller.controller_id, "--json")

    assert result.returncode == 0, result.stderr
    rows = {row["request_id"]: row for row in json.loads(result.stdout)["requests"]}
    assert rows[request_id]["status"] == "identity_unverified"
    assert rows[request_id]["controller_id"] == own_controller.controller_id
    assert email not in result.stdout


def test_the_listing_follows_the_local_runs_clock(stack, own_controller):
    request_id, _ = submit(stack, own_controller)
    assert request_id in {row["request_id"] for row in listed(stack, own_controller)["requests"]}, (
        "listed while it is kept"
    )

    stack.advance_clock(UNVERIFIED_KEEP_SECONDS + 60)  # put back after the test (conftest.restore_stack_clocks)
    ids = {row["request_id"] for row in listed(stack, own_controller)["requests"]}

    assert request_id not in ids


def test_show_reveal_and_controllers(stack, own_controller):
    request_id, email = submit(stack, own_controller)

    hidden = rightsdesk(stack, "requests", "show", request_id, "--json")
    revealed = rightsdesk(stack, "requests", "show", request_id, "--reveal", "--json")
    controllers = rightsdesk(stack, "controllers", "list", "--json")

    assert email not in hidden.stdout
    assert json.loads(revealed.stdout)["personal"]["email"] == email
    assert "personal_data_viewed" in [event["action"] for event in json.loads(revealed.stdout)["audit"]]
    assert own_controller.site in [row["site_key"] for row in json.loads(controllers.stdout)["controllers"]]


def test_an_unknown_request_is_a_json_error_and_exit_1(stack):
    result = rightsdesk(stack, "--json", "requests", "show", "dsr_nosuchrequest")

    assert result.returncode == 1
    assert json.loads(result.stdout)["error"]["code"] == "not_found"
    assert "Traceback" not in result.stderr


def test_operator_actions_name_the_local_user(stack, own_controller):
    request_id, email = submit(stack, own_controller)

    revealed = stack.cli_json("requests", "show", request_id, "--reveal")
    stack.cli_json("hold", "place", "--request", request_id, "--reason", "case-local")
    trail = stack.cli_json("requests", "show", request_id)["audit"]

    who = {event["action"]: event["operator"] for event in trail if event["actor"] == "operator"}
    local_user = {"account": "local", "principal": f"local:{getpass.getuser()}"}
    for action in ("personal_data_viewed", "legal_hold_placed"):
        assert {key: who[action][key] for key in local_user} == local_user
        assert len(who[action]["arn_hash"]) == 64
    # the same user in two runs: the same hash, so an auditor can follow one person across the trail
    assert who["personal_data_viewed"]["arn_hash"] == who["legal_hold_placed"]["arn_hash"]
    # the subject's own events stay as they were: no operator on them
    assert all(event["operator"] is None for event in trail if event["actor"] != "operator")
    assert email in json.dumps(revealed["personal"]) and email not in json.dumps(trail)
