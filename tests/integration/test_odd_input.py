"""Odd input over real HTTP: whatever a body, a query or a header holds, the answer is a 4xx in the
error shape (never a 5xx), with our security headers; text fields refuse invisible and line-break
characters with a field error; an Idempotency-Key reused with another body is a 422, and the
idempotency records hold nothing an address could be read or guessed back from."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.integration

SUBMIT_FIELDS = ("site", "type", "email", "name", "details", "locale", "relationship", "purposes")
HEADERS_WE_READ = (
    "Accept",
    "Accept-Language",
    "Authorization",
    "Idempotency-Key",
    "Origin",
    "Sec-GPC",
    "Content-Type",
    "X-Forwarded-For",
    "User-Agent",
)
PROBE = settings(
    max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


@pytest.fixture(scope="module")
def stack(launch_stack):
    """A stack of this module's own: its odd tokens count as failed attempts of this one source
    (rightsdesk.intake.guard), which would lock other modules' tests out of a shared stack."""
    running = launch_stack()
    yield running
    running.stop()


def new_email() -> str:
    return f"odd-{uuid.uuid4().hex[:10]}@example.org"


def valid_body(**changes) -> dict:
    return {"site": "demo", "type": "access", "email": new_email(), **changes}


def assert_refused_cleanly(response: requests.Response) -> dict:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    if response.status_code >= 400 and "json" in response.headers.get("Content-Type", ""):
        error = response.json()["error"]
        assert set(error) <= {"code", "message", "fields"} and error["code"] and error["message"]
        return error
    return {}


def nested(depth: int, leaf: object = 1) -> object:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


# ------------------------------------------------------------------ bodies


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("array nesting bomb", "[" * 5000 + "]" * 5000),
        ("object nesting bomb", '{"a":' * 2000 + "1" + "}" * 2000),
        ("nesting in a field", json.dumps(valid_body(name=nested(200)))),
        ("nesting just past the limit", json.dumps(valid_body(details=nested(40)))),
        ("a 5000-digit number", '{"site": "demo", "type": "access", "email": "a@b.cc", "name": ' + "9" * 5000 + "}"),
        ("a 5000-digit float", '{"name": 1.' + "1" * 5000 + "}"),
        ("NaN and Infinity", '{"site": NaN, "type": Infinity, "email": -Infinity}'),
        ("a lone surrogate", '{"site": "demo", "type": "access", "email": "a@b.cc", "name": "\\udc00"}'),
        ("null", "null"),
        ("a string", '"x"'),
        ("an array", "[1, 2]"),
        ("truncated", '{"site": "de'),
    ],
)
@pytest.mark.parametrize("path", ["/v1/requests", "/v1/requests/dsr_0000/verify", "/v1/requests/dsr_0000/cancel"])
def test_odd_json_bodies_are_refused_with_a_4xx(stack, name, raw, path):
    response = stack.http.post(
        f"{stack.base_url}{path}", data=raw.encode(), headers={"Content-Type": "application/json"}
    )
    error = assert_refused_cleanly(response)
    assert 400 <= response.status_code < 500 and error, name


def test_shallow_nesting_in_a_field_is_a_field_error(stack):
    response = stack.http.post(f"{stack.base_url}/v1/requests", json=valid_body(name=nested(5)))
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"name": "invalid_input"}


@PROBE
@given(
    field=st.sampled_from(SUBMIT_FIELDS),
    depth=st.integers(1, 60),
    leaf=st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
)
def test_any_nesting_in_any_field_is_a_4xx(stack, field, depth, leaf):
    response = stack.http.post(f"{stack.base_url}/v1/requests", json=valid_body(**{field: nested(depth, leaf)}))
    assert_refused_cleanly(response)
    assert 400 <= response.status_code < 500


@PROBE
@given(field=st.sampled_from(SUBMIT_FIELDS), text=st.text(max_size=300))
def test_any_unicode_in_any_field_is_answered_without_a_5xx(stack, field, text):
    response = stack.http.post(f"{stack.base_url}/v1/requests", json=valid_body(**{field: text}))
    assert_refused_cleanly(response)


@pytest.mark.parametrize("field", ["site", "email", "name", "details"])
def test_overlong_values_are_field_errors(stack, field):
    response = stack.http.post(f"{stack.base_url}/v1/requests", json=valid_body(**{field: "x" * 5000}))
    assert response.status_code == 422
    assert field in response.json()["error"]["fields"]


# ------------------------------------------------------------------ free text


@pytest.mark.parametrize("field", ["email", "name", "site", "details"])
@pytest.mark.parametrize(
    "char", ["\x00", "\r", "\x1b", "\x85", "\u202e", "\u2066", "\u200b", "\u200d", "\ufeff", "\u2028"]
)
def test_invisible_and_control_characters_are_field_errors(stack, field, char):
    value = {"email": f"ana{char}x@example.org", "site": f"de{char}mo"}.get(field, f"Ana{char}Novak")
    response = stack.http.post(f"{stack.base_url}/v1/requests", json=valid_body(**{field: value}))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][field] in ("invalid_characters", "invalid_email")


def test_a_form_with_a_line_break_in_the_name_shows_the_field_error(stack):
    response = stack.http.post(
        f"{stack.base_url}/v1/requests",
        headers={"Accept": "text/html"},
        data={"site": "demo", "type": "access", "email": new_email(), "name": "Ana\nBcc: x"},
    )
    assert response.status_code == 422
    assert "invisible formatting characters" in response.text


def test_details_keep_their_line_breaks(stack):
    response = stack.http.post(
        f"{stack.base_url}/v1/requests", json=valid_body(details="Chat on 3 May\r\nand the newsletter\n\tthanks")
    )
    assert response.status_code == 202


# ------------------------------------------------------------------ queries and headers


def test_odd_cursors_are_422(stack):
    headers = {"Authorization": f"Bearer {stack.demo_api_key}"}
    for cursor in ("é", "%FF%FE", ".", "abc.def", "\u202e", "x" * 512, "W10.", "e30.0000", "%00"):
        response = stack.http.get(f"{stack.base_url}/v1/controller/requests?cursor={cursor}", headers=headers)
        assert_refused_cleanly(response)
        assert response.status_code == 422, (cursor, response.text)


@PROBE
@given(header=st.sampled_from(HEADERS_WE_READ), value=st.text(max_size=200))
def test_any_header_value_is_answered_without_a_5xx(stack, header, value):
    raw = value.replace("\r", "").replace("\n", "").replace("\x00", "").strip().encode()
    for method, path in (
        ("POST", "/v1/requests"),
        ("GET", "/v1/requests/dsr_0000"),
        ("GET", "/"),
        ("GET", "/v1/controller/requests"),
    ):
        response = stack.http.request(method, f"{stack.base_url}{path}", json=valid_body(), headers={header: raw})
        assert_refused_cleanly(response)


@pytest.mark.parametrize("key", ["", "k" * 256, "a\x01b", "ключ", "a\u202eb"])
def test_malformed_idempotency_keys_are_422(stack, key):
    response = stack.http.post(
        f"{stack.base_url}/v1/requests", json=valid_body(), headers={"Idempotency-Key": key.encode()}
    )
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"idempotency-key": "invalid_format"}


# ------------------------------------------------------------------ Idempotency-Key


def _digests(text: str) -> set[str]:
    data = text.encode()
    return {hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest()}


def test_an_idempotency_key_answers_only_its_own_body(stack):
    key = f"odd-{uuid.uuid4().hex}"
    first_body = valid_body()
    first = stack.http.post(f"{stack.base_url}/v1/requests", json=first_body, headers={"Idempotency-Key": key})
    again = stack.http.post(f"{stack.base_url}/v1/requests", json=first_body, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()

    other_body = valid_body()
    reused = stack.http.post(f"{stack.base_url}/v1/requests", json=other_body, headers={"Idempotency-Key": key})
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert first.json()["request_id"] not in reused.text

    # What the idempotency records keep: neither the address nor an unkeyed hash of any form of the body.
    dynamodb = stack.client("dynamodb")
    stored = json.dumps(
        [
            page["Items"]
            for page in dynamodb.get_paginator("scan").paginate(TableName="rightsdesk-local-IdempotencyTable")
        ]
    )
    assert first.json()["request_id"] in stored, "the record of the first answer is in the scanned table"
    full = {"name": None, "details": None, "locale": None, "relationship": "self", "purposes": []}
    for body in (first_body, other_body):
        forms = {
            json.dumps(body),
            json.dumps(body, sort_keys=True),
            json.dumps(body, separators=(",", ":")),
            json.dumps(body, sort_keys=True, separators=(",", ":")),
            json.dumps({**full, **body}, sort_keys=True),
            json.dumps({**full, **body}, sort_keys=True, separators=(",", ":")),
            body["email"],
            json.dumps(body["email"]),
        }
        assert body["email"] not in stored
        for form in forms:
            for digest in _digests(form):
                assert digest not in stored, f"an unkeyed hash of {form!r}"
