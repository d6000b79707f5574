"""Answers API Gateway makes itself (GatewayResponses) look like ours: the error shape of
rightsdesk.platform.http.ERROR_SCHEMA and every header of rightsdesk.platform.http.SECURITY_HEADERS."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import jsonschema
import pytest

from rightsdesk.platform import http
from tests.template.test_template import delete, load_template, props, resources, set_

# Every response type whose answer a client of ours may see: no route (403/404), the authorizer's
# refusals, throttling, a body too large, and the defaults every other type falls back to.
RELIED_ON = {
    "DEFAULT_4XX": None,
    "DEFAULT_5XX": None,
    "UNAUTHORIZED": 401,
    "ACCESS_DENIED": 403,
    "MISSING_AUTHENTICATION_TOKEN": 404,
    "RESOURCE_NOT_FOUND": 404,
    "THROTTLED": 429,
    "REQUEST_TOO_LARGE": 413,
}
# What $context.error.messageString becomes: a JSON string.
CONTEXT = {
    "$context.error.messageString": '"Missing Authentication Token"',
    "$context.error.responseType": "DEFAULT_4XX",
    "$context.error.message": "Missing Authentication Token",
}


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


def static_value(value: str) -> str | None:
    """An API Gateway static header value is written inside one pair of single quotes."""
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == "'" else None


def check_gateway_responses(tpl: dict) -> list[str]:
    problems = []
    for api_name, api in resources(tpl, "AWS::Serverless::Api").items():
        responses = props(api).get("GatewayResponses") or {}
        for kind, status in RELIED_ON.items():
            spec = responses.get(kind)
            if spec is None:
                problems.append(f"{api_name}: no {kind} gateway response")
                continue
            if status is not None and spec.get("StatusCode") != status:
                problems.append(f"{api_name}.{kind}: StatusCode is {spec.get('StatusCode')}, not {status}")
            headers = (spec.get("ResponseParameters") or {}).get("Headers") or {}
            for name, value in http.SECURITY_HEADERS.items():
                if static_value(str(headers.get(name, ""))) != value:
                    problems.append(f"{api_name}.{kind}: header {name} is not {value!r}")
            template = (spec.get("ResponseTemplates") or {}).get("application/json")
            if template is None:
                problems.append(f"{api_name}.{kind}: no application/json body")
                continue
            for variable, example in CONTEXT.items():
                template = template.replace(variable, example)
            try:
                jsonschema.validate(json.loads(template), http.ERROR_SCHEMA)
            except (ValueError, jsonschema.ValidationError) as error:
                problems.append(f"{api_name}.{kind}: body is not in the error shape ({type(error).__name__})")
    return problems


def test_every_gateway_response_we_rely_on_has_our_headers_and_error_shape(template):
    assert check_gateway_responses(template) == []


def test_throttled_answers_say_when_to_retry(template):
    headers = props(template["Resources"]["PublicApi"])["GatewayResponses"]["THROTTLED"]["ResponseParameters"][
        "Headers"
    ]
    assert static_value(headers["Retry-After"]).isdigit()


def test_server_errors_made_by_the_gateway_say_nothing_of_internals(template):
    body = props(template["Resources"]["PublicApi"])["GatewayResponses"]["DEFAULT_5XX"]["ResponseTemplates"]
    assert "$context" not in body["application/json"], "the gateway's own 5xx message could name internals"


RESPONSES = "Resources.PublicApi.Properties.GatewayResponses"
MUTATIONS: dict[str, Callable[[dict], None]] = {
    "no THROTTLED response": delete(f"{RESPONSES}.THROTTLED"),
    "a header missing": delete(f"{RESPONSES}.DEFAULT_4XX.ResponseParameters.Headers.X-Content-Type-Options"),
    "a header unquoted": set_(f"{RESPONSES}.UNAUTHORIZED.ResponseParameters.Headers.Cache-Control", "no-store"),
    "a body in another shape": set_(
        f"{RESPONSES}.ACCESS_DENIED.ResponseTemplates",
        {"application/json": '{"message": $context.error.messageString}'},
    ),
    "the gateway's 404 as 403": set_(f"{RESPONSES}.MISSING_AUTHENTICATION_TOKEN.StatusCode", 403),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_the_check_catches(template, mutation):
    broken = copy.deepcopy(template)
    MUTATIONS[mutation](broken)
    assert check_gateway_responses(broken) != []
