"""The public API's CORS origin list (template parameter CorsAllowOrigins -> CORS_ALLOW_ORIGINS ->
powertools' CORSConfig): a listed origin is answered with its own name, any other origin gets no
Access-Control-Allow-Origin at all, and an empty list allows none. Security headers are on every answer.

A browser asks before a cross-origin JSON POST or a request with an Authorization header (the
preflight, OPTIONS): template.yaml routes OPTIONS of those paths to the function (SubmitPreflight
and the others), and powertools answers it from the same CORSConfig: 204, the allowed origin only,
the headers a page may send, and how long the browser may remember the answer.

The handler module is imported afresh in a child process per origin list: it reads the list once,
at import, as Lambda does at a cold start. Only GET /openapi.json and preflights are called; they
touch no AWS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = "https://privacy.shop.example"

_CHILD = r"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("public_api_app", sys.argv[1])
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)

class Context:
    function_name, memory_limit_in_mb, aws_request_id = "cors", 128, "r"
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:cors"
    def get_remaining_time_in_millis(self):
        return 10000

answers = {}
for call in json.loads(sys.argv[2]):
    origin, method, resource, path = call["origin"], call["method"], call["resource"], call["path"]
    headers = {"Accept": "application/json", **({"Origin": origin} if origin else {}), **call["headers"]}
    event = {"resource": resource, "path": path, "httpMethod": method, "headers": headers,
             "multiValueHeaders": {k: [v] for k, v in headers.items()}, "queryStringParameters": None,
             "pathParameters": {"id": "dsr_0123456789abcdef0123"} if "{id}" in resource else None,
             "body": None, "isBase64Encoded": False,
             "requestContext": {"resourcePath": resource, "httpMethod": method, "stage": "dev",
                                "requestId": "r", "domainName": "api.example", "identity": {"sourceIp": "192.0.2.1"}}}
    response = app.lambda_handler(event, Context())
    answers[call["key"]] = {"status": response["statusCode"], "body": response.get("body"),
                            "headers": {**response.get("headers", {}),
                                        **{k: ",".join(v) for k, v in (response.get("multiValueHeaders") or {}).items()}}}
print(json.dumps(answers))
"""


def answers(cors_allow_origins: str, origins: list[str | None]) -> dict[str, dict]:
    """GET /openapi.json from each origin (None: no Origin header), by origin ("" for None)."""
    return call(
        cors_allow_origins,
        [
            {
                "key": origin or "",
                "origin": origin,
                "method": "GET",
                "resource": "/openapi.json",
                "path": "/openapi.json",
                "headers": {},
            }
            for origin in origins
        ],
    )


def call(cors_allow_origins: str, calls: list[dict]) -> dict[str, dict]:
    env = {
        **os.environ,
        "CORS_ALLOW_ORIGINS": cors_allow_origins,
        "AWS_DEFAULT_REGION": "eu-central-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "rightsdesk",
        "RIGHTSDESK_HASH_KEY": "cors-test",
        "PYTHONPATH": str(ROOT / "layers" / "core"),
    }
    app = ROOT / "functions" / "public_api" / "app.py"
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(app), json.dumps(calls)],
        capture_output=True,
        text=True,
        env=env,
        cwd=app.parent,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def listed():
    return answers(f"{ALLOWED}, https://other.example", [ALLOWED, "https://evil.example", "null", None])


def test_a_listed_origin_gets_its_own_name_back(listed):
    headers = listed[ALLOWED]["headers"]
    assert headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Origin" in headers.get("Vary", "")
    assert headers.get("Access-Control-Allow-Credentials") is None, "no cookies cross origins"


@pytest.mark.parametrize("origin", ["https://evil.example", "null", ""])
def test_any_other_origin_gets_no_allow_origin_header(listed, origin):
    headers = listed[origin]["headers"]
    assert listed[origin]["status"] == 200
    assert not any(name.lower().startswith("access-control-") for name in headers), headers


def test_an_empty_list_allows_no_origin_at_all():
    unlisted = answers("", [ALLOWED])[ALLOWED]["headers"]
    assert not any(name.lower().startswith("access-control-") for name in unlisted)


def test_security_headers_are_on_every_answer(listed):
    for answer in listed.values():
        headers = answer["headers"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Strict-Transport-Security"].startswith("max-age=")
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


# ------------------------------------------------------------------ preflights (OPTIONS)

# What a page on another origin calls and the request headers that make its browser ask first
# (tests/template/test_cors_template.py checks that template.yaml routes each one's OPTIONS).
PREFLIGHTED = {
    "submit": ("/v1/requests", "/v1/requests", "POST", "content-type"),
    "verify": ("/v1/requests/{id}/verify", "/v1/requests/dsr_0123456789abcdef0123/verify", "POST", "content-type"),
    "status": ("/v1/requests/{id}", "/v1/requests/dsr_0123456789abcdef0123", "GET", "authorization"),
    "cancel": (
        "/v1/requests/{id}/cancel",
        "/v1/requests/dsr_0123456789abcdef0123/cancel",
        "POST",
        "authorization,content-type",
    ),
}


def preflights(cors_allow_origins: str, origins: list[str | None]) -> dict[str, dict]:
    """Every PREFLIGHTED route from each origin, keyed "<route> <origin>"."""
    return call(
        cors_allow_origins,
        [
            {
                "key": f"{name} {origin or ''}",
                "origin": origin,
                "method": "OPTIONS",
                "resource": resource,
                "path": path,
                "headers": {"Access-Control-Request-Method": method, "Access-Control-Request-Headers": asked},
            }
            for name, (resource, path, method, asked) in PREFLIGHTED.items()
            for origin in origins
        ],
    )


@pytest.fixture(scope="module")
def preflighted():
    return preflights(f"{ALLOWED}, https://other.example", [ALLOWED, "https://other.example", "https://evil.example"])


@pytest.mark.parametrize("route", sorted(PREFLIGHTED))
def test_a_preflight_from_a_listed_origin_is_answered_by_the_function(preflighted, route):
    answer = preflighted[f"{route} {ALLOWED}"]
    headers = answer["headers"]
    assert answer["status"] == 204 and not answer["body"]
    assert headers["Access-Control-Allow-Origin"] == ALLOWED, "that origin only, never *"
    allowed_headers = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key"} <= allowed_headers  # a retried submission
    asked = PREFLIGHTED[route][2]
    assert asked in headers["Access-Control-Allow-Methods"].split(",")
    assert int(headers["Access-Control-Max-Age"]) > 0, "browsers may remember the answer"
    assert "Origin" in headers.get("Vary", "")
    assert headers.get("Access-Control-Allow-Credentials") is None, "no cookies cross origins"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_each_listed_origin_gets_its_own_name_back(preflighted):
    for route in PREFLIGHTED:
        assert (
            preflighted[f"{route} https://other.example"]["headers"]["Access-Control-Allow-Origin"]
            == "https://other.example"
        )


@pytest.mark.parametrize("route", sorted(PREFLIGHTED))
def test_a_preflight_from_another_origin_gets_no_allow_origin(preflighted, route):
    headers = preflighted[f"{route} https://evil.example"]["headers"]
    assert "Access-Control-Allow-Origin" not in headers and "Access-Control-Allow-Headers" not in headers


def test_without_a_listed_origin_there_is_no_preflight_answer():
    answer = preflights("", [ALLOWED])[f"submit {ALLOWED}"]
    assert answer["status"] == 404
    assert not any(name.lower().startswith("access-control-") for name in answer["headers"])
