"""A browser's CORS preflight through the local runner, as a page on another origin makes it.

The runner reads its routes from template.yaml (local/gateway.py), so an OPTIONS request reaches
PublicApiFunction only where the template has an OPTIONS event, as in API Gateway. The stack runs
with `--parameter-overrides CorsAllowOrigins=<the test's origin>`, as a deployment would set it.
"""

from __future__ import annotations

import pytest
import requests

from tests.support.flows import Flow

pytestmark = pytest.mark.integration

ALLOWED = "https://privacy.shop.example"
OTHER = "https://evil.example"


@pytest.fixture(scope="module")
def cors_stack(launch_stack):
    return launch_stack("--parameter-overrides", f"CorsAllowOrigins={ALLOWED}")


def preflight(stack, path: str, origin: str, method: str, asked: str) -> requests.Response:
    return stack.http.options(
        stack.base_url + path,
        timeout=30,
        headers={"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": asked},
    )


def allowed_headers(response: requests.Response) -> set[str]:
    return {h.strip().lower() for h in response.headers.get("Access-Control-Allow-Headers", "").split(",") if h.strip()}


def test_a_page_on_the_allowed_origin_submits_verifies_and_follows_with_preflights(cors_stack):
    flow = Flow(cors_stack)
    email = flow.new_email("cors")
    asked = preflight(cors_stack, "/v1/requests", ALLOWED, "POST", "content-type")
    assert asked.status_code == 204, asked.text
    assert asked.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert {"content-type", "authorization"} <= allowed_headers(asked)
    assert "POST" in asked.headers["Access-Control-Allow-Methods"].split(",")
    assert int(asked.headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in asked.headers.get("Vary", "")

    submitted = flow.submit(email, headers={"Origin": ALLOWED})
    assert submitted.status_code == 202 and submitted.headers["Access-Control-Allow-Origin"] == ALLOWED
    request_id = submitted.json()["request_id"]

    asked = preflight(cors_stack, f"/v1/requests/{request_id}/verify", ALLOWED, "POST", "content-type")
    assert asked.status_code == 204 and asked.headers["Access-Control-Allow-Origin"] == ALLOWED
    verified = cors_stack.post(
        f"/v1/requests/{request_id}/verify",
        json={"code": flow.code(email)},
        headers={"Origin": ALLOWED, "Accept": "application/json"},
    )
    assert verified.status_code == 200 and verified.headers["Access-Control-Allow-Origin"] == ALLOWED
    token = verified.json()["status_token"]

    for path, method in ((f"/v1/requests/{request_id}", "GET"), (f"/v1/requests/{request_id}/cancel", "POST")):
        asked = preflight(cors_stack, path, ALLOWED, method, "authorization")
        assert asked.status_code == 204, (path, asked.text)
        assert asked.headers["Access-Control-Allow-Origin"] == ALLOWED and "authorization" in allowed_headers(asked)
    status = cors_stack.get(
        f"/v1/requests/{request_id}",
        headers={"Origin": ALLOWED, "Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    assert status.status_code == 200 and status.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_another_origin_gets_no_allow_origin(cors_stack):
    for path, method, asked in (
        ("/v1/requests", "POST", "content-type"),
        ("/v1/requests/dsr_0123456789abcdef0123", "GET", "authorization"),
    ):
        answer = preflight(cors_stack, path, OTHER, method, asked)
        assert "Access-Control-Allow-Origin" not in answer.headers, path
        assert "Access-Control-Allow-Headers" not in answer.headers, path


def test_the_controller_api_answers_no_preflight(cors_stack):
    """Servers call it; its routes have no OPTIONS event, so the gateway refuses before any function."""
    answer = preflight(cors_stack, "/v1/controller/requests", ALLOWED, "GET", "authorization")
    assert answer.status_code >= 400
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_the_repo_template_answers_no_preflight_without_origins(stack):
    """The default CorsAllowOrigins is empty: the route exists, but no origin is allowed."""
    answer = preflight(stack, "/v1/requests", ALLOWED, "POST", "content-type")
    assert answer.status_code == 404
    assert not any(name.lower().startswith("access-control-") for name in answer.headers)
