"""The subject's API through the local runner over real HTTP, against moto server."""

from __future__ import annotations

import re
import uuid

import boto3
import pytest
import requests

from tests.support.openapi import check_every_answer, public_openapi

pytestmark = pytest.mark.integration

# Every personal value a test sends is remembered, so the last test can prove none reached a log.
SENT_PERSONAL: list[str] = []
SENT_CODES: list[str] = []


def new_email() -> str:
    email = f"subject-{uuid.uuid4().hex[:10]}@example.org"
    SENT_PERSONAL.append(email)
    return email


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A stack of this module's own: its tests move the clock by days, and its log is checked whole."""
    from tests.support.stack import start_stack

    running = start_stack(tmp_path_factory.mktemp("public-api-stack"))
    # Every JSON answer must be what the OpenAPI document says (tests/support/openapi.py).
    check_every_answer(running.http, running.base_url, public_openapi())
    yield running
    running.stop()


@pytest.fixture(scope="module")
def api(stack):
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    check_every_answer(session, stack.base_url, public_openapi())
    return session


@pytest.fixture(scope="module")
def rights_table(stack):
    dynamodb = boto3.resource(
        "dynamodb",
        endpoint_url=stack.moto_url,
        region_name="eu-central-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return dynamodb.Table("rightsdesk-local-RightsTable")


def item_count(table) -> int:
    return sum(1 for _ in _scan(table))


def _scan(table):
    kwargs: dict = {}
    while True:
        page = table.scan(**kwargs)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def code_for(stack, email: str) -> str:
    mail = stack.wait_for_mail(email)
    match = re.search(r"\b(\d{6})\b", mail["text"])
    assert match, "the verification email carries a 6-digit code"
    SENT_CODES.append(match.group(1))
    return match.group(1)


def submit(stack, api, email: str | None = None, **fields):
    body = {"site": "demo", "type": "access", "email": email or new_email(), **fields}
    return api.post(f"{stack.base_url}/v1/requests", json=body)


def submit_and_verify(stack, api, **fields):
    email = new_email()
    response = submit(stack, api, email, **fields)
    assert response.status_code == 202, response.text
    request_id = response.json()["request_id"]
    verified = api.post(f"{stack.base_url}/v1/requests/{request_id}/verify", json={"code": code_for(stack, email)})
    assert verified.status_code == 200, verified.text
    return request_id, verified.json()


# ------------------------------------------------------------------ the happy path


def test_submit_verify_follow_and_cancel(stack, api):
    email = new_email()
    response = submit(stack, api, email, name="Ana Novak", details="chat on 3 May")
    SENT_PERSONAL.extend(["Ana Novak", "chat on 3 May"])
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "identity_unverified"
    request_id = body["request_id"]

    mail = stack.wait_for_mail(email)
    assert f"/verify/{request_id}" in mail["text"], "the email links to the verification page"

    verified = api.post(f"{stack.base_url}/v1/requests/{request_id}/verify", json={"code": code_for(stack, email)})
    assert verified.status_code == 200
    verified_body = verified.json()
    assert verified_body["status"] == "verified"
    assert verified_body["due_at"] and verified_body["status_token"]
    token = verified_body["status_token"]

    status = api.get(f"{stack.base_url}/v1/requests/{request_id}", headers={"Authorization": f"Bearer {token}"})
    assert status.status_code == 200
    view = status.json()
    # The dispatcher routes the request to the demo controller's webhook at once, so it may be past verified.
    assert view["status"] in ("verified", "forwarded", "delivered")
    assert [step["status"] for step in view["timeline"]][:2] == ["identity_unverified", "verified"]
    assert email not in status.text and "Ana" not in status.text, "the status view holds no personal data"

    cancelled = api.post(
        f"{stack.base_url}/v1/requests/{request_id}/cancel", headers={"Authorization": f"Bearer {token}"}
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    after = api.get(f"{stack.base_url}/v1/requests/{request_id}", headers={"Authorization": f"Bearer {token}"})
    assert after.json()["status"] == "cancelled"


def test_form_encoded_submission_is_accepted(stack, api):
    email = new_email()
    response = api.post(
        f"{stack.base_url}/v1/requests",
        data={"site": "demo", "type": "consent_withdrawal", "email": email, "purposes": ["marketing", "newsletter"]},
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "identity_unverified"


def test_browser_submission_redirects_to_the_code_page(stack):
    response = requests.post(
        f"{stack.base_url}/v1/requests",
        data={"site": "demo", "type": "erasure", "email": new_email()},
        headers={"Accept": "text/html"},
        allow_redirects=False,
    )
    assert response.status_code == 303
    assert "/verify/dsr_" in response.headers["Location"]


def test_the_same_idempotency_key_returns_the_same_request_and_one_email(stack, api):
    email = new_email()
    key = str(uuid.uuid4())
    first = api.post(
        f"{stack.base_url}/v1/requests",
        json={"site": "demo", "type": "access", "email": email},
        headers={"Idempotency-Key": key},
    )
    second = api.post(
        f"{stack.base_url}/v1/requests",
        json={"site": "demo", "type": "access", "email": email},
        headers={"Idempotency-Key": key},
    )
    assert first.status_code == second.status_code == 202
    assert first.json()["request_id"] == second.json()["request_id"]
    stack.wait_for_mail(email)
    assert len([m for m in stack.outbox() if email in m["to"]]) == 1


def test_one_idempotency_key_is_one_request_however_the_site_is_spelled(stack, api):
    """The key is scoped to the site as the store keys it (identifiers.normalize_site_key): a retry
    that spells the site " Demo " or "DEMO\t" gets the first answer, not a second request."""
    email = new_email()
    key = str(uuid.uuid4())
    answers = [
        api.post(
            f"{stack.base_url}/v1/requests",
            json={"site": site, "type": "access", "email": email},
            headers={"Idempotency-Key": key},
        )
        for site in ("demo", " Demo ", "DEMO\t")
    ]
    assert [answer.status_code for answer in answers] == [202, 202, 202]
    assert len({answer.json()["request_id"] for answer in answers}) == 1
    stack.wait_for_mail(email)
    assert len([m for m in stack.outbox() if email in m["to"]]) == 1


def test_the_answer_does_not_reveal_whether_an_address_is_known(stack, api):
    known = new_email()
    assert submit(stack, api, known).status_code == 202
    again = submit(stack, api, known)
    fresh = submit(stack, api)
    assert again.status_code == fresh.status_code == 202
    assert again.json().keys() == fresh.json().keys()
    assert again.json()["status"] == fresh.json()["status"]


def test_openapi_document_is_served(stack, api):
    response = api.get(f"{stack.base_url}/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/v1/requests" in paths and "/v1/requests/{request_id}/verify" in paths


def test_security_headers_are_set(stack):
    response = requests.get(f"{stack.base_url}/")
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


# ------------------------------------------------------------------ bad input stores and sends nothing


BAD_SUBMISSIONS = [
    (
        "malformed json",
        {"data": '{"site": "demo", "type": ', "headers": {"Content-Type": "application/json"}},
        400,
        "malformed_json",
        None,
    ),
    (
        "wrong content type",
        {"data": "site=demo", "headers": {"Content-Type": "text/plain"}},
        415,
        "unsupported_media_type",
        None,
    ),
    (
        "body over 16 KB",
        {"json": {"site": "demo", "type": "access", "email": "big@example.org", "details": "x" * 17000}},
        413,
        "payload_too_large",
        None,
    ),
    (
        "unknown type",
        {"json": {"site": "demo", "type": "teleport", "email": "t@example.org"}},
        422,
        "invalid_input",
        ("type", "invalid_choice"),
    ),
    (
        "invalid email",
        {"json": {"site": "demo", "type": "access", "email": "not-an-address"}},
        422,
        "invalid_input",
        ("email", "invalid_email"),
    ),
    (
        "overlong email",
        {"json": {"site": "demo", "type": "access", "email": "a" * 250 + "@example.org"}},
        422,
        "invalid_input",
        ("email", "too_long"),
    ),
    (
        "unknown site",
        {"json": {"site": "nobody-registered-this", "type": "access", "email": "u@example.org"}},
        422,
        "unknown_site",
        ("site", "unknown_site"),
    ),
    ("missing fields", {"json": {"type": "access"}}, 422, "invalid_input", ("site", "required")),
    (
        "withdrawal without purposes",
        {"json": {"site": "demo", "type": "consent_withdrawal", "email": "w@example.org"}},
        422,
        "invalid_input",
        ("purposes", "purposes_required"),
    ),
    ("not an object", {"json": ["site", "demo"]}, 422, "invalid_input", None),
]


@pytest.mark.parametrize(
    "case, request_kwargs, status, code, field", BAD_SUBMISSIONS, ids=[c[0] for c in BAD_SUBMISSIONS]
)
def test_bad_submissions_get_a_clear_error_and_store_nothing(
    stack, api, rights_table, case, request_kwargs, status, code, field
):
    SENT_PERSONAL.extend(["big@example.org", "t@example.org", "u@example.org", "w@example.org"])
    stack.drain()  # what earlier tests queued is handled first: their mails and items are not counted here
    items_before = item_count(rights_table)
    mails_before = len(stack.outbox())

    response = api.post(f"{stack.base_url}/v1/requests", **request_kwargs)
    stack.drain()  # had it queued a mail, the notifier would have sent it by now

    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    if field:
        assert error["fields"][field[0]] == field[1]
    assert item_count(rights_table) == items_before, "a rejected request stores nothing"
    assert len(stack.outbox()) == mails_before, "a rejected request emails nothing"
    assert "Traceback" not in response.text


# ------------------------------------------------------------------ verification


def test_a_wrong_code_is_refused_and_the_sixth_attempt_is_locked(stack, api):
    email = new_email()
    request_id = submit(stack, api, email).json()["request_id"]
    real = code_for(stack, email)
    wrong = "000000" if real != "000000" else "111111"
    for attempt in range(5):
        response = api.post(f"{stack.base_url}/v1/requests/{request_id}/verify", json={"code": wrong})
        assert response.status_code == 400, attempt
        assert response.json()["error"]["code"] == "invalid_code"
    sixth = api.post(f"{stack.base_url}/v1/requests/{request_id}/verify", json={"code": real})
    assert sixth.status_code == 429
    assert sixth.json()["error"]["code"] == "too_many_attempts"


def test_a_code_verifies_once_and_a_retry_only_repeats_the_answer_for_its_15_minutes(stack, api, rights_table):
    """Verify is safe to retry (a lost answer): the same code gives the same answer, and nothing more
    happens; after the code's 15 minutes it is 409 as for any request not waiting for a code."""
    email = new_email()
    request_id = submit(stack, api, email).json()["request_id"]
    code = code_for(stack, email)
    first = api.post(f"{stack.base_url}/v1/requests/{request_id}/verify", json={"code": code})
    assert first.status_code == 200
    again = api.post(f"{stack.base_url}/v1/requests/{request_id}/verify", json={"code": code})
    assert again.status_code == 200
    assert again.json()["status_token"] == first.json()["status_token"]
    steps = [
        item
        for item in _scan(rights_table)
        if item["pk"] == f"REQ#{request_id}" and item["sk"].startswith("AUDIT#") and item.get("to_status") == "verified"
    ]
    assert len(steps) == 1, "verified once"

    stack.advance_clock(15 * 60 + 1)  # put back after the test (conftest.restore_stack_clocks)
    late = api.post(f"{stack.base_url}/v1/requests/{request_id}/verify", json={"code": code})
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "not_awaiting_verification"


def test_a_malformed_code_is_a_field_error(stack, api):
    request_id = submit(stack, api).json()["request_id"]
    response = api.post(f"{stack.base_url}/v1/requests/{request_id}/verify", json={"code": "12ab"})
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"code": "invalid_code"}


def test_unknown_request_and_bad_token(stack, api):
    missing = api.post(f"{stack.base_url}/v1/requests/dsr_doesnotexist000000/verify", json={"code": "123456"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"

    request_id, _ = submit_and_verify(stack, api)
    for header in ({"Authorization": "Bearer rst_wrong"}, {"Authorization": "Basic abc"}, {}):
        response = api.get(f"{stack.base_url}/v1/requests/{request_id}", headers=header)
        assert response.status_code == 401, header
        assert response.json()["error"]["code"] == "unauthorized"
    cancel = api.post(f"{stack.base_url}/v1/requests/{request_id}/cancel", headers={"Authorization": "Bearer nope"})
    assert cancel.status_code == 401


def test_unknown_route_is_a_json_404(stack, api):
    response = api.get(f"{stack.base_url}/v1/nothing-here")
    assert response.status_code == 404
    assert "error" in response.json()


# ------------------------------------------------------------------ the clock (each test's moves are undone after it)


def test_a_code_expires_after_15_minutes(stack, api):
    email = new_email()
    request_id = submit(stack, api, email).json()["request_id"]
    code = code_for(stack, email)
    stack.advance_clock(15 * 60 + 1)
    response = api.post(f"{stack.base_url}/v1/requests/{request_id}/verify", json={"code": code})
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "code_expired"


def test_an_unverified_request_is_gone_after_72_hours(stack, api):
    email = new_email()
    request_id = submit(stack, api, email).json()["request_id"]
    wrong = "000000" if code_for(stack, email) != "000000" else "111111"
    verify = f"{stack.base_url}/v1/requests/{request_id}/verify"
    stack.advance_clock(72 * 3600 - 60)
    kept = api.post(verify, json={"code": wrong})
    assert kept.status_code == 410 and kept.json()["error"]["code"] == "code_expired", "a minute before: still there"
    stack.advance_clock(61)
    response = api.post(verify, json={"code": wrong})
    assert response.status_code == 404


def test_no_personal_data_reached_any_log_line(stack):
    logs = stack.logs()
    assert "request submitted" in logs, "the handler logs are captured (the check below means something)"
    leaked = sorted({value for value in SENT_PERSONAL if value in logs})
    assert not leaked, f"personal data in logs: {len(leaked)} values"
    # a code stands alone, not inside a longer number such as a timestamp or a duration
    leaked_codes = [code for code in SENT_CODES if re.search(rf"(?<![\d.]){code}(?![\d.])", logs)]
    assert not leaked_codes, f"verification codes in logs: {len(leaked_codes)}"
