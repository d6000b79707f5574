"""Who may call which route: nothing public requires a key, nothing under /v1/controller is open.

DESIGN.md: "Controller routes use a Lambda REQUEST authorizer; nothing is public that is not
listed as public." The rule works on the effective authorizer of every Api event (its own
`Auth.Authorizer`, else the API's `DefaultAuthorizer`; `NONE` means none), so a new route is
checked whichever way it is declared.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.template.test_template import delete, load_template, props, referenced_ids, resources, set_

ROOT = Path(__file__).resolve().parents[2]
AUTHORIZER = "ControllerAuthorizer"
AUTHORIZER_FUNCTION = "ControllerAuthorizerFunction"
CONTROLLER_PREFIX = "/v1/controller/"
# Open under the controller prefix: the controller API's OpenAPI document, which holds no data.
OPEN_CONTROLLER_ROUTES = frozenset({("GET", "/v1/controller/openapi.json")})


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


def is_controller_route(path: str, method: str | None = None) -> bool:
    """A route behind the authorizer: under the controller prefix and not one of the open ones."""
    if (method, path) in OPEN_CONTROLLER_ROUTES:
        return False
    return path == CONTROLLER_PREFIX.rstrip("/") or path.startswith(CONTROLLER_PREFIX)


def api_events(tpl: dict) -> list[tuple[str, str, str, str, dict]]:
    """(function, event, method, path, properties) of every Api event."""
    found = []
    for name, fn in resources(tpl, "AWS::Serverless::Function").items():
        for event_name, event in (props(fn).get("Events") or {}).items():
            if event.get("Type") == "Api":
                p = event.get("Properties") or {}
                found.append((name, event_name, str(p.get("Method", "")).upper(), str(p.get("Path", "")), p))
    return found


def effective_authorizer(tpl: dict, event_properties: dict) -> str | None:
    apis = resources(tpl, "AWS::Serverless::Api")
    api_ids = referenced_ids(event_properties.get("RestApiId")) & set(apis)
    default = None
    for api_id in api_ids:
        default = (props(apis[api_id]).get("Auth") or {}).get("DefaultAuthorizer")
    name = (event_properties.get("Auth") or {}).get("Authorizer", default)
    return None if name in (None, "NONE") else name


def check_route_auth(tpl: dict) -> list[str]:
    problems = []
    events = api_events(tpl)
    if not any(is_controller_route(path, method) for _, _, method, path, _ in events):
        problems.append("no controller route in the template")
    for fn, event, method, path, p in events:
        authorizer = effective_authorizer(tpl, p)
        if is_controller_route(path, method) and authorizer != AUTHORIZER:
            problems.append(f"{fn}.{event} {method} {path}: controller route without {AUTHORIZER}")
        if not is_controller_route(path, method) and authorizer is not None:
            problems.append(f"{fn}.{event} {method} {path}: public route requires {authorizer}")
        if p.get("Auth", {}).get("ApiKeyRequired") and not is_controller_route(path, method):
            problems.append(f"{fn}.{event} {method} {path}: public route requires an API Gateway key")
    return problems


def check_authorizer(tpl: dict) -> list[str]:
    problems = []
    for api_name, api in resources(tpl, "AWS::Serverless::Api").items():
        spec = ((props(api).get("Auth") or {}).get("Authorizers") or {}).get(AUTHORIZER)
        if spec is None:
            problems.append(f"{api_name}: no {AUTHORIZER}")
            continue
        identity = spec.get("Identity") or {}
        if spec.get("FunctionArn") != {"Fn::GetAtt": [AUTHORIZER_FUNCTION, "Arn"]}:
            problems.append(f"{api_name}: {AUTHORIZER} does not run {AUTHORIZER_FUNCTION}")
        if spec.get("FunctionPayloadType") != "REQUEST":
            problems.append(f"{api_name}: {AUTHORIZER} is not a REQUEST authorizer")
        if identity.get("Headers") != ["Authorization"]:
            problems.append(f"{api_name}: {AUTHORIZER} is not keyed on the Authorization header alone")
        if identity.get("ReauthorizeEvery") != 300:
            problems.append(f"{api_name}: {AUTHORIZER} does not cache its answer for 300 s")
    return problems


def test_public_routes_are_open_and_controller_routes_are_authorized(template):
    assert check_route_auth(template) == []


def test_the_authorizer_is_a_cached_request_authorizer_on_the_authorization_header(template):
    assert check_authorizer(template) == []


def test_the_public_routes_are_exactly_the_open_ones(template):
    open_routes = {(m, path) for _, _, m, path, p in api_events(template) if effective_authorizer(template, p) is None}
    assert open_routes, "the subject's form and API are public"
    assert {route for route in open_routes if "controller" in route[1]} == OPEN_CONTROLLER_ROUTES


def test_the_authorizer_has_a_sample_event():
    samples = [json.loads(f.read_text()) for f in (ROOT / "events" / "controller_authorizer").glob("*.json")]
    assert any(
        s.get("type") == "REQUEST" and s.get("methodArn") and "Authorization" in (s.get("headers") or {})
        for s in samples
    ), "events/controller_authorizer/ needs a REQUEST authorizer event"


def test_the_authorizer_refuses_in_the_apis_error_shape(template):
    responses = props(template["Resources"]["PublicApi"]).get("GatewayResponses") or {}
    body = json.loads(responses["UNAUTHORIZED"]["ResponseTemplates"]["application/json"])
    assert responses["UNAUTHORIZED"]["StatusCode"] == 401 and body["error"]["code"] == "unauthorized"


# ------------------------------------------------------------------ the checks can fail

EVENTS = "Resources.ControllerApiFunction.Properties.Events"
AUTH = "Resources.PublicApi.Properties.Auth"


NEW_OPEN_CONTROLLER_ROUTE = {
    "Type": "Api",
    "Properties": {"RestApiId": {"Ref": "PublicApi"}, "Path": "/v1/controller/export", "Method": "GET"},
}

MUTATIONS: dict[str, tuple[Callable[[dict], list[str]], Callable[[dict], None]]] = {
    "controller route without auth": (check_route_auth, delete(f"{EVENTS}.ListRequests.Properties.Auth")),
    "controller route opted out": (
        check_route_auth,
        set_(f"{EVENTS}.ReportStatus.Properties.Auth", {"Authorizer": "NONE"}),
    ),
    "new controller route left open": (check_route_auth, set_(f"{EVENTS}.Export", NEW_OPEN_CONTROLLER_ROUTE)),
    "the open document behind the authorizer": (
        check_route_auth,
        set_(f"{EVENTS}.ControllerOpenApi.Properties.Auth", {"Authorizer": AUTHORIZER}),
    ),
    "public route behind the authorizer": (
        check_route_auth,
        set_("Resources.PublicApiFunction.Properties.Events.Submit.Properties.Auth", {"Authorizer": AUTHORIZER}),
    ),
    "default authorizer closes public routes": (check_route_auth, set_(f"{AUTH}.DefaultAuthorizer", AUTHORIZER)),
    "token authorizer": (check_authorizer, set_(f"{AUTH}.Authorizers.{AUTHORIZER}.FunctionPayloadType", "TOKEN")),
    "no cache": (check_authorizer, set_(f"{AUTH}.Authorizers.{AUTHORIZER}.Identity.ReauthorizeEvery", 0)),
    "keyed on a query string": (
        check_authorizer,
        set_(f"{AUTH}.Authorizers.{AUTHORIZER}.Identity", {"QueryStrings": ["key"], "ReauthorizeEvery": 300}),
    ),
    "no authorizer": (check_authorizer, delete(f"{AUTH}.Authorizers.{AUTHORIZER}")),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_the_auth_checks_catch(template, mutation):
    check, mutate = MUTATIONS[mutation]
    assert check(template) == []
    broken = copy.deepcopy(template)
    mutate(broken)
    assert check(broken) != []
