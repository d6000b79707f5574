"""The controller API through the local runner over real HTTP: the REQUEST authorizer and its
cache, tenant isolation, pull delivery, status reports, flags, and the webhook secret routes.

Controllers are registered with the operator CLI (`rightsdesk --local controllers add`), as an
operator would; requests arrive through the public API, as a subject's would.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from rightsdesk.kernel import clock, deadlines
from tests.support.flows import eventually
from tests.support.openapi import check_every_answer, controller_openapi, public_openapi
from tests.support.stack import add_with_cli

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

# Everything personal or secret a test sends or receives; the last test proves none reached a log.
SENT_PERSONAL: list[str] = []
SECRETS: list[str] = []


@dataclass
class Controller:
    controller_id: str
    site: str
    api_key: str
    webhook_secret: str | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def rightsdesk(stack, *args: str) -> dict:
    return json.loads(stack.cli("--json", *args).stdout)


def add_controller(stack, delivery: str = "pull", *options: str) -> Controller:
    site = f"c-{uuid.uuid4().hex[:10]}"
    contact = f"dpo@{site}.example"
    SENT_PERSONAL.append(contact)
    created = add_with_cli(stack, site, contact, delivery, *options)
    SECRETS.extend(value for value in (created["api_key"], created["webhook_secret"]) if value)
    return Controller(created["controller"]["controller_id"], site, created["api_key"], created["webhook_secret"])


def rotate_key(stack, controller: Controller) -> str:
    new_key = rightsdesk(stack, "controllers", "rotate-key", controller.controller_id)["api_key"]
    SECRETS.append(new_key)
    return new_key


def new_email() -> str:
    email = f"subject-{uuid.uuid4().hex[:10]}@example.org"
    SENT_PERSONAL.append(email)
    return email


@dataclass
class Submitted:
    request_id: str
    email: str
    status_token: str


def submit_verified(stack, controller: Controller, *, email: str | None = None, **fields) -> Submitted:
    email = email or new_email()
    response = stack.post(
        "/v1/requests",
        json={"site": controller.site, "type": "access", "email": email, **fields},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 202, response.text
    request_id = response.json()["request_id"]
    mail = eventually(lambda: [m for m in stack.outbox() if email in m["to"] and request_id in (m["text"] or "")])[-1]
    code = re.search(r"\b(\d{6})\b", mail["text"]).group(1)
    verified = stack.post(f"/v1/requests/{request_id}/verify", json={"code": code})
    assert verified.status_code == 200, verified.text
    return Submitted(request_id, email, verified.json()["status_token"])


def forwarded(stack, table, request_id: str) -> None:
    """Wait for the dispatcher to route the request to its (pull) controller."""
    key = {"pk": f"REQ#{request_id}", "sk": "REQUEST"}
    eventually(lambda: table.get_item(Key=key, ConsistentRead=True)["Item"]["status"] == "forwarded", timeout=20)


def forwarded_request(stack, table, controller: Controller, **fields) -> Submitted:
    submitted = submit_verified(stack, controller, **fields)
    forwarded(stack, table, submitted.request_id)
    return submitted


@pytest.fixture(scope="module")
def api(stack):
    """Every answer this session gets must be what the OpenAPI documents say (tests/support/openapi.py)."""
    session = requests.Session()
    check_every_answer(session, stack.base_url, controller_openapi(), public_openapi())
    return session


@pytest.fixture
def acme(stack):
    """A pull controller of the test's own (every test owns its controllers, sites and requests)."""
    return add_controller(stack)


@pytest.fixture
def globex(stack):
    return add_controller(stack)


def url(stack, path: str) -> str:
    return stack.base_url + path


def status_of(stack, submitted: Submitted) -> dict:
    response = requests.get(
        url(stack, f"/v1/requests/{submitted.request_id}"),
        headers={"Authorization": f"Bearer {submitted.status_token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


# ------------------------------------------------------------------ the authorizer


def test_missing_malformed_unknown_and_rotated_out_keys_are_401(stack, api, table):
    controller = add_controller(stack)
    never_used = controller.api_key
    new_key = rotate_key(stack, controller)
    unknown = "rdk_" + "A" * 43
    for headers in (
        {},
        {"Authorization": ""},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": f"Bearer {unknown}"},
        {"Authorization": f"Bearer {never_used}"},
    ):
        response = api.get(url(stack, "/v1/controller/requests"), headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"] == "unauthorized"
    assert (
        api.get(url(stack, "/v1/controller/requests"), headers={"Authorization": f"Bearer {new_key}"}).status_code
        == 200
    )


def test_a_rotated_key_stops_at_once_even_while_the_gateway_caches_it(stack, api):
    controller = add_controller(stack)
    assert api.get(url(stack, "/v1/controller/requests"), headers=controller.auth).status_code == 200
    new_key = rotate_key(stack, controller)
    # The gateway still holds the old key's Allow (ReauthorizeEvery 300 s); the function re-checks.
    response = api.get(url(stack, "/v1/controller/requests"), headers=controller.auth)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert (
        api.get(url(stack, "/v1/controller/requests"), headers={"Authorization": f"Bearer {new_key}"}).status_code
        == 200
    )


def test_the_authorizer_answer_is_cached_per_key(stack, api):
    controller = add_controller(stack)

    def invocations() -> int:
        return sum(
            1 for line in stack.logs().splitlines() if '"api key accepted"' in line and controller.controller_id in line
        )

    assert invocations() == 0
    for path in (
        "/v1/controller/requests",
        "/v1/controller/requests?status=delivered",
        "/v1/controller/requests/dsr_00000000000000000000",
        "/v1/controller/requests",
    ):
        assert api.get(url(stack, path), headers=controller.auth).status_code in (200, 404)
    assert api.post(url(stack, "/v1/controller/webhook/test"), headers=controller.auth).status_code == 409
    assert invocations() == 1, "five calls on three routes, one authorizer run"


def test_public_routes_need_no_key(stack, api):
    assert api.get(url(stack, "/"), headers={"Accept": "text/html"}).status_code == 200
    assert api.get(url(stack, "/openapi.json")).status_code == 200


def test_the_controller_api_serves_its_openapi_document_without_a_key(stack, api):
    served = api.get(url(stack, "/v1/controller/openapi.json"))
    assert served.status_code == 200 and served.headers["content-type"].startswith("application/json")
    assert served.json() == controller_openapi(), "what the route serves is what docs/openapi/ holds"
    assert api.get(url(stack, "/openapi.json")).json() == public_openapi()


def test_an_answer_the_document_does_not_describe_fails_the_check(stack, table):
    """The answer check can fail: a document that promises another shape refuses the real answer."""
    wrong = json.loads(json.dumps(controller_openapi()))
    listing = wrong["paths"]["/v1/controller/requests"]["get"]["responses"]["200"]["content"]["application/json"]
    listing["schema"]["properties"]["requests"]["items"]["required"].append("promised")
    session = requests.Session()
    check_every_answer(session, stack.base_url, wrong)
    controller = add_controller(stack)
    forwarded_request(stack, table, controller)
    with pytest.raises(AssertionError, match="promised"):
        session.get(url(stack, "/v1/controller/requests"), headers=controller.auth)


# ------------------------------------------------------------------ tenant isolation


def test_a_controller_can_neither_list_read_nor_update_anothers_requests(stack, api, table, acme, globex):
    theirs = forwarded_request(stack, table, globex)
    mine = forwarded_request(stack, table, acme)

    listed = api.get(url(stack, "/v1/controller/requests"), headers=acme.auth).json()["requests"]
    assert mine.request_id in [item["request_id"] for item in listed]
    assert theirs.request_id not in [item["request_id"] for item in listed]
    for status in ("forwarded", "delivered"):
        listed = api.get(url(stack, f"/v1/controller/requests?status={status}"), headers=acme.auth).json()["requests"]
        assert theirs.request_id not in [item["request_id"] for item in listed]

    nobody = api.get(url(stack, "/v1/controller/requests/dsr_00000000000000000000"), headers=acme.auth)
    read = api.get(url(stack, f"/v1/controller/requests/{theirs.request_id}"), headers=acme.auth)
    update = api.post(
        url(stack, f"/v1/controller/requests/{theirs.request_id}/status"),
        headers=acme.auth,
        json={"status": "completed"},
    )
    assert read.status_code == update.status_code == 404
    assert read.json() == update.json() == nobody.json(), "another tenant's request looks like no request at all"
    assert theirs.email not in read.text

    # Untouched: still forwarded, and its own controller's first pull delivers it.
    assert status_of(stack, theirs)["status"] == "forwarded"
    own = api.get(url(stack, f"/v1/controller/requests/{theirs.request_id}"), headers=globex.auth)
    assert own.status_code == 200 and own.json()["status"] == "delivered"


def test_an_unverified_request_is_not_the_controllers_business_yet(stack, api, table, acme):
    email = new_email()
    response = stack.post("/v1/requests", json={"site": acme.site, "type": "access", "email": email})
    request_id = response.json()["request_id"]
    listed = api.get(url(stack, "/v1/controller/requests"), headers=acme.auth).json()["requests"]
    assert request_id not in [item["request_id"] for item in listed]
    assert api.get(url(stack, f"/v1/controller/requests/{request_id}"), headers=acme.auth).status_code == 404

    # The positive control: once verified, the same listing and read show it.
    mail = eventually(lambda: [m for m in stack.outbox() if email in m["to"] and request_id in (m["text"] or "")])[-1]
    verified = stack.post(
        f"/v1/requests/{request_id}/verify", json={"code": re.search(r"\b(\d{6})\b", mail["text"]).group(1)}
    )
    assert verified.status_code == 200, verified.text
    forwarded(stack, table, request_id)
    listed = api.get(url(stack, "/v1/controller/requests"), headers=acme.auth).json()["requests"]
    assert request_id in [item["request_id"] for item in listed]
    assert api.get(url(stack, f"/v1/controller/requests/{request_id}"), headers=acme.auth).status_code == 200


# ------------------------------------------------------------------ pull delivery


def test_the_first_pull_marks_the_request_delivered(stack, api, table, acme):
    name = f"Name {uuid.uuid4().hex[:6]}"
    SENT_PERSONAL.append(name)
    submitted = forwarded_request(stack, table, acme, name=name)

    # Listing is not delivery: the list carries no subject data, so the request stays forwarded.
    listed = api.get(url(stack, "/v1/controller/requests?status=forwarded&limit=100"), headers=acme.auth).json()
    assert submitted.request_id in {row["request_id"] for row in listed["requests"]}
    assert all("subject" not in row for row in listed["requests"])
    assert status_of(stack, submitted)["status"] == "forwarded"

    first = api.get(url(stack, f"/v1/controller/requests/{submitted.request_id}"), headers=acme.auth)
    assert first.status_code == 200
    body = first.json()
    assert body["status"] == "delivered"
    assert body["subject"] == {"email": submitted.email, "name": name}, "the personal data is handed over"
    assert [step["status"] for step in body["timeline"]][-2:] == ["forwarded", "delivered"]

    item = table.get_item(Key={"pk": f"REQ#{submitted.request_id}", "sk": "REQUEST"})["Item"]
    assert item["retention_rule"] == "delivered_subject_data", "the purge after delivery is scheduled"
    audit = table.query(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :a)",
        ExpressionAttributeValues={":pk": f"REQ#{submitted.request_id}", ":a": "AUDIT#"},
    )["Items"]
    delivered = [event for event in audit if event.get("to_status") == "delivered"]
    assert len(delivered) == 1 and delivered[0]["actor"] == f"controller:{acme.controller_id}"

    again = api.get(url(stack, f"/v1/controller/requests/{submitted.request_id}"), headers=acme.auth)
    assert again.json()["status"] == "delivered"
    assert status_of(stack, submitted)["status"] == "delivered", "the subject sees it too"


# ------------------------------------------------------------------ status reports


def test_status_reports_follow_the_rules_and_reach_the_subject(stack, api, table, acme):
    submitted = forwarded_request(stack, table, acme)
    path = url(stack, f"/v1/controller/requests/{submitted.request_id}/status")

    early = api.post(path, headers=acme.auth, json={"status": "acknowledged"})
    assert early.status_code == 409 and early.json()["error"]["code"] == "illegal_transition", "not delivered yet"

    view = api.get(url(stack, f"/v1/controller/requests/{submitted.request_id}"), headers=acme.auth).json()
    verified_at, due_at = clock.parse_iso(view["verified_at"]), clock.parse_iso(view["due_at"])
    cap = deadlines.latest_extension(verified_at)

    refusals = [
        ({"status": "rejected"}, 422, {"reason": "required"}),
        ({"status": "rejected", "reason": "   "}, 422, {"reason": "required"}),
        (
            {"status": "acknowledged", "extend_to": clock.isoformat(due_at + timedelta(days=10))},
            422,
            {"reason": "required"},
        ),
        (
            {"status": "acknowledged", "reason": "busy", "extend_to": clock.isoformat(cap + timedelta(days=1))},
            422,
            {"extend_to": "beyond_legal_limit"},
        ),
        (
            {"status": "acknowledged", "reason": "busy", "extend_to": clock.isoformat(due_at - timedelta(days=1))},
            422,
            {"extend_to": "not_later"},
        ),
        (
            {"status": "completed", "reason": "done", "extend_to": clock.isoformat(due_at + timedelta(days=1))},
            422,
            {"extend_to": "not_allowed"},
        ),
        ({"status": "finished"}, 422, {"status": "invalid_choice"}),
        ({"status": "acknowledged", "note": "x"}, 422, {"note": "unknown_field"}),
    ]
    for body, status, fields in refusals:
        response = api.post(path, headers=acme.auth, json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["fields"] == fields, body
    malformed = api.post(path, headers={**acme.auth, "Content-Type": "application/json"}, data="{")
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed_json"

    reason = "We need to search our chat archive; that takes time."
    extend_to = cap  # exactly the legal maximum is allowed
    acknowledged = api.post(
        path,
        headers=acme.auth,
        json={"status": "acknowledged", "reason": reason, "extend_to": clock.isoformat(extend_to)},
    )
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["status"] == "acknowledged"
    assert acknowledged.json()["due_at"] == clock.isoformat(extend_to)

    again = api.post(path, headers=acme.auth, json={"status": "acknowledged"})
    assert again.status_code == 409

    done = api.post(path, headers=acme.auth, json={"status": "completed", "reason": "Everything was deleted."})
    assert done.status_code == 200 and done.json()["status"] == "completed"
    after = api.post(path, headers=acme.auth, json={"status": "in_progress"})
    assert after.status_code == 409, "a closed request stays closed"

    subject_view = status_of(stack, submitted)
    assert subject_view["status"] == "completed"
    assert subject_view["due_at"] == clock.isoformat(extend_to)
    assert [s["status"] for s in subject_view["timeline"]][-3:] == ["delivered", "acknowledged", "completed"]

    def updates() -> list[str]:
        return [
            m["text"]
            for m in stack.outbox()
            if submitted.email in m["to"] and (m["subject"].startswith("Update") or "was extended" in m["subject"])
        ]

    eventually(lambda: len(updates()) == 2)
    extension, closing = updates()
    assert reason in extension and "Acknowledged" in extension, "the extension mail names the new status too"
    assert "Everything was deleted." in closing


def test_an_extension_alone_keeps_the_status(stack, api, table, acme):
    submitted = forwarded_request(stack, table, acme)
    view = api.get(url(stack, f"/v1/controller/requests/{submitted.request_id}"), headers=acme.auth).json()
    path = url(stack, f"/v1/controller/requests/{submitted.request_id}/status")
    assert api.post(path, headers=acme.auth, json={"status": "in_progress"}).status_code == 200
    later = clock.parse_iso(view["due_at"]) + timedelta(days=20)
    extended = api.post(
        path,
        headers=acme.auth,
        json={"status": "in_progress", "reason": "complex case", "extend_to": clock.isoformat(later)},
    )
    assert extended.status_code == 200, extended.text
    assert extended.json()["status"] == "in_progress" and extended.json()["due_at"] == clock.isoformat(later)


def test_every_body_the_document_accepts_form_encoded_is_read_from_a_form(stack, api, table, acme):
    """The document offers every JSON body form-encoded too (docs/controller-api.md): each route that
    takes a body reads the same fields from a form as from JSON, and the document offers a form
    only where a form can carry the body (no nested object)."""
    submitted = forwarded_request(stack, table, acme)
    request_path = url(stack, f"/v1/controller/requests/{submitted.request_id}")
    view = api.get(request_path, headers=acme.auth).json()  # the pull delivers it
    later = clock.isoformat(clock.parse_iso(view["due_at"]) + timedelta(days=20))
    day = clock.isoformat(clock.now() - timedelta(days=1))
    sent = [
        (f"{request_path}/status", {"status": "acknowledged"}, 200, {"status": "acknowledged"}),
        (f"{request_path}/status", {"reason": "a complex case", "extend_to": later}, 200, {"due_at": later}),
        (url(stack, "/v1/controller/gpc"), {"visitor_id": f"v-{uuid.uuid4().hex[:12]}", "seen_at": day}, 200, {}),
        # read, then refused for what acme is (a pull controller): a form not read is a 422 first
        (url(stack, "/v1/controller/deliveries/redeliver"), {"since": day}, 409, {}),
    ]
    for path, form, status, expected in sent:
        answer = api.post(path, headers=acme.auth, data=form)
        assert answer.status_code == status, (path, answer.text)
        assert expected.items() <= answer.json().items(), (path, answer.text)

    document = controller_openapi()
    for path, item in document["paths"].items():
        for operation in item.values():
            content = (operation.get("requestBody") or {}).get("content") or {}
            if "application/x-www-form-urlencoded" in content:
                schema = content["application/json"]["schema"]
                name = schema.get("$ref", "").rsplit("/", 1)[-1]
                properties = document["components"]["schemas"][name]["properties"] if name else schema["properties"]
                nested = [k for k, v in properties.items() if v.get("type") == "object"]
                assert not nested, f"{path} offers a form for a body with an object field: {nested}"


# ------------------------------------------------------------------ flags


def test_a_second_request_in_a_year_is_flagged_excessive(stack, api, table, acme):
    email = new_email()
    first = forwarded_request(stack, table, acme, email=email)
    second = forwarded_request(stack, table, acme, email=email.upper())
    guardian = forwarded_request(stack, table, acme, relationship="guardian")

    listed = {
        item["request_id"]: item
        for item in api.get(url(stack, "/v1/controller/requests?status=forwarded&limit=100"), headers=acme.auth).json()[
            "requests"
        ]
    }
    assert listed[first.request_id]["flags"] == []
    assert listed[second.request_id]["flags"] == ["excessive"]
    assert listed[guardian.request_id]["flags"] == ["guardian"]
    detail = api.get(url(stack, f"/v1/controller/requests/{second.request_id}"), headers=acme.auth).json()
    assert detail["flags"] == ["excessive"]


# ------------------------------------------------------------------ listing


def test_the_listing_pages_with_an_opaque_signed_cursor(stack, api, table):
    controller = add_controller(stack)
    other = add_controller(stack)
    ids = {forwarded_request(stack, table, controller).request_id for _ in range(3)}
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = api.get(url(stack, "/v1/controller/requests"), headers=controller.auth, params=query).json()
        seen += [item["request_id"] for item in page["requests"]]
        cursor, pages = page["next_cursor"], pages + 1
        if not cursor:
            break
        assert "REQ#" not in cursor and "CTRL#" not in cursor
    assert sorted(seen) == sorted(ids) and len(seen) == 3 and pages >= 3

    first = api.get(url(stack, "/v1/controller/requests"), headers=controller.auth, params={"limit": 1}).json()
    token = first["next_cursor"]
    for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"), "garbage", "e30." + token.split(".")[1]):
        response = api.get(url(stack, "/v1/controller/requests"), headers=controller.auth, params={"cursor": bad})
        assert response.status_code == 422 and response.json()["error"]["fields"] == {"cursor": "invalid_cursor"}
    stolen = api.get(url(stack, "/v1/controller/requests"), headers=other.auth, params={"cursor": token})
    assert stolen.status_code == 422, "a cursor only continues the listing that issued it"
    assert api.get(
        url(stack, "/v1/controller/requests"), headers=controller.auth, params={"status": "sleeping"}
    ).json()["error"]["fields"] == {"status": "invalid_choice"}


# ------------------------------------------------------------------ webhook secret routes


def test_webhook_rotation_and_test_events(stack, api):
    hooked = add_controller(stack, "webhook", "--webhook-url", f"{stack.receiver_url}/webhooks/rotation-test")
    assert hooked.webhook_secret and hooked.webhook_secret.startswith("whsec_")

    rotated = api.post(url(stack, "/v1/controller/webhook/rotate"), headers=hooked.auth)
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    SECRETS.append(body["webhook_secret"])
    assert body["webhook_secret"].startswith("whsec_") and body["webhook_secret"] != hooked.webhook_secret
    valid_until = clock.parse_iso(body["previous_secret_valid_until"]) - clock.parse_iso(stack.clock()["now"])
    assert timedelta(hours=23, minutes=59) < valid_until <= timedelta(hours=24)

    shown = rightsdesk(stack, "controllers", "show", hooked.controller_id)["controller"]
    assert shown["webhook_secret"] == "set" and shown["previous_webhook_secret_valid_until"]
    assert body["webhook_secret"] not in json.dumps(shown)

    queued = api.post(url(stack, "/v1/controller/webhook/test"), headers=hooked.auth)
    assert queued.status_code == 202 and queued.json()["status"] == "queued"

    pull = add_controller(stack)
    for route in ("rotate", "test"):
        refused = api.post(url(stack, f"/v1/controller/webhook/{route}"), headers=pull.auth)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_webhook"


def test_the_cli_refuses_a_webhook_to_a_private_address(stack):
    result = stack.cli(
        "--json",
        "controllers",
        "add",
        "--name",
        "Evil",
        "--site",
        f"e-{uuid.uuid4().hex[:8]}",
        "--contact",
        "dpo@evil.example",
        "--delivery",
        "webhook",
        "--webhook-url",
        "https://169.254.169.254/latest",
        check=False,
    )
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"]["code"] == "webhook_url_refused"


# ------------------------------------------------------------------ last: the logs


def test_no_personal_data_or_secret_reached_any_log_line(stack):
    logs = stack.logs()
    assert "api key accepted" in logs and "status reported" in logs, "the handler logs are captured"
    leaked = sorted({value for value in SENT_PERSONAL if value in logs})
    assert not leaked, f"personal data in logs: {len(leaked)} values"
    leaked_secrets = [value for value in SECRETS if value in logs or value.removeprefix("whsec_") in logs]
    assert not leaked_secrets, f"keys or secrets in logs: {len(leaked_secrets)}"
