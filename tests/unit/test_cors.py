"""The public API's CORS origin list (template parameter CorsAllowOrigins -> CORS_ALLOW_ORIGINS ->
powertools' CORSConfig): a listed origin is answered with its own name, any other origin gets no
Access-Control-Allow-Origin at all, and an empty list allows none. Security headers are on every answer.

The handler module is imported afresh in a child process per origin list: it reads the list once,
at import, as Lambda does at a cold start. Only GET /openapi.json is called; it touches no AWS.
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
for origin in json.loads(sys.argv[2]):
    headers = {"Accept": "application/json", **({"Origin": origin} if origin else {})}
    event = {"resource": "/openapi.json", "path": "/openapi.json", "httpMethod": "GET", "headers": headers,
             "multiValueHeaders": {k: [v] for k, v in headers.items()}, "queryStringParameters": None,
             "pathParameters": None, "body": None, "isBase64Encoded": False,
             "requestContext": {"resourcePath": "/openapi.json", "httpMethod": "GET", "stage": "dev",
                                "requestId": "r", "domainName": "api.example", "identity": {"sourceIp": "192.0.2.1"}}}
    response = app.lambda_handler(event, Context())
    answers[origin or ""] = {"status": response["statusCode"],
                             "headers": {**response.get("headers", {}),
                                         **{k: ",".join(v) for k, v in (response.get("multiValueHeaders") or {}).items()}}}
print(json.dumps(answers))
"""


def answers(cors_allow_origins: str, origins: list[str | None]) -> dict[str, dict]:
    env = {**os.environ, "CORS_ALLOW_ORIGINS": cors_allow_origins, "AWS_DEFAULT_REGION": "eu-central-1",
           "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_NAMESPACE": "rightsdesk",
           "RIGHTSDESK_HASH_KEY": "cors-test", "PYTHONPATH": str(ROOT / "layers" / "core")}
    app = ROOT / "functions" / "public_api" / "app.py"
    out = subprocess.run([sys.executable, "-c", _CHILD, str(app), json.dumps(origins)], capture_output=True,
                         text=True, env=env, cwd=app.parent, timeout=60, check=True)
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
