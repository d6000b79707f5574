"""The error answers both API functions install from rightsdesk.platform.api_errors, called through
the public API's handler in-process with events that touch no AWS: JSON for API clients, the page
the person came from for browsers (found by API Gateway's resource and the `{id}` path parameter),
and the same JSON shape from the controller API."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUEST_ID = "dsr_0123456789abcdef0123"


def _load(function: str):
    name = f"_api_errors_{function}_app"
    sys.path.insert(0, str(ROOT / "functions" / function))
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function / "app.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "functions" / function))
    return module


class Context:
    function_name, memory_limit_in_mb, aws_request_id = "errors", 128, "r"
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:errors"

    def get_remaining_time_in_millis(self):
        return 10000


def _call(app, method: str, resource: str, path: str, *, accept: str, body: str | None = None) -> dict:
    headers = {"Accept": accept, **({"Content-Type": "application/x-www-form-urlencoded"} if body else {})}
    event = {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "pathParameters": {"id": REQUEST_ID} if "{id}" in resource else None,
        "body": body,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "stage": "dev",
            "requestId": "r",
            "domainName": "api.example",
            "identity": {"sourceIp": "192.0.2.1"},
        },
    }
    answer = app.lambda_handler(event, Context())
    answer["headers"] = {
        **answer.get("headers", {}),
        **{k: ",".join(v) for k, v in (answer.get("multiValueHeaders") or {}).items()},
    }
    return answer


@pytest.fixture(scope="module")
def public_api():
    return _load("public_api")


def test_a_wrong_code_format_sends_a_browser_back_to_that_requests_code_page(public_api):
    answer = _call(
        public_api,
        "POST",
        "/v1/requests/{id}/verify",
        f"/v1/requests/{REQUEST_ID}/verify",
        accept="text/html",
        body="code=abc",
    )
    assert answer["statusCode"] == 422
    assert answer["headers"]["Content-Type"].startswith("text/html")
    assert f'action="/v1/requests/{REQUEST_ID}/verify' in answer["body"], "the verify page of this request"


def test_a_wrong_code_format_is_json_for_an_api_client(public_api):
    answer = _call(
        public_api,
        "POST",
        "/v1/requests/{id}/verify",
        f"/v1/requests/{REQUEST_ID}/verify",
        accept="application/json",
        body="code=abc",
    )
    assert answer["statusCode"] == 422
    assert json.loads(answer["body"]) == {
        "error": {"code": "invalid_input", "message": "some fields are not valid", "fields": {"code": "invalid_code"}}
    }


@pytest.mark.parametrize(
    ("accept", "content_type"), [("text/html", "text/html"), ("application/json", "application/json")]
)
def test_an_unknown_route_is_a_404_page_or_json(public_api, accept, content_type):
    answer = _call(public_api, "GET", "/nope", "/nope", accept=accept)
    assert answer["statusCode"] == 404
    assert answer["headers"]["Content-Type"].startswith(content_type)
    if content_type == "application/json":
        assert json.loads(answer["body"]) == {"error": {"code": "not_found", "message": "no such resource"}}


def test_the_controller_api_answers_an_unknown_route_in_the_same_shape():
    controller_api = _load("controller_api")
    answer = _call(controller_api, "GET", "/v1/controller/nope", "/v1/controller/nope", accept="text/html")
    assert answer["statusCode"] == 404
    assert answer["headers"]["Content-Type"].startswith("application/json"), "no pages on the controller API"
    assert json.loads(answer["body"]) == {"error": {"code": "not_found", "message": "no such resource"}}
