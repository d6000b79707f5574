"""CORS preflights reach the public function: every public route a page on another origin calls with
a preflight has an OPTIONS event, and no preflight route is closed or points elsewhere.

A browser asks first (OPTIONS) before a cross-origin POST with a JSON body, and before any request
that carries an Authorization header. API Gateway answers OPTIONS only where the REST API has that
method, so template.yaml routes it to PublicApiFunction, whose CORSConfig (from CorsAllowOrigins)
answers with the allowed origin only (tests/unit/test_cors.py). A preflight carries no credentials:
an authorizer on it would refuse every browser. The bearer routes are read from docs/api.md's route
table, where the `auth` column says `Authorization: Bearer`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.template.test_auth import api_events, effective_authorizer, is_controller_route
from tests.template.test_template import delete, load_template, props, referenced_ids, set_

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = "PublicApiFunction"
API_DOC = ROOT / "docs" / "api.md"


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


def bearer_routes(doc: str | None = None) -> set[tuple[str, str]]:
    """(method, path) of every route docs/api.md lists with `Authorization: Bearer` as its auth."""
    text = API_DOC.read_text() if doc is None else doc
    found = set()
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and "Authorization: Bearer" in cells[1]:
            route = re.fullmatch(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`?\s]*)`", cells[0])
            if route:
                found.add((route.group(1), route.group(2)))
    return found


def check_preflights(tpl: dict, bearer: set[tuple[str, str]]) -> list[str]:
    problems = []
    events = [e for e in api_events(tpl) if not is_controller_route(e[3])]
    ours = [e for e in events if e[0] == FUNCTION]
    preflights = {(path, repr(p.get("RestApiId"))): (fn, name, p) for fn, name, m, path, p in events if m == "OPTIONS"}
    needing = [
        (name, m, path, p)
        for _, name, m, path, p in ours
        if effective_authorizer(tpl, p) is None and (m == "POST" or (m, path) in bearer)
    ]
    if not needing:
        problems.append(f"{FUNCTION} has no public POST or bearer route")
    for name, method, path, p in needing:
        found = preflights.get((path, repr(p.get("RestApiId"))))
        if found is None:
            problems.append(f"{FUNCTION}.{name} {method} {path}: no OPTIONS event; browsers' preflights are refused")
        elif found[0] != FUNCTION:
            problems.append(f"{found[0]}.{found[1]} OPTIONS {path}: not {FUNCTION}, whose CORSConfig answers it")
    for fn, name, method, path, p in api_events(tpl):
        if method != "OPTIONS":
            continue
        if is_controller_route(path):
            problems.append(f"{fn}.{name} OPTIONS {path}: the controller API is called by servers, not pages")
        if effective_authorizer(tpl, p) is not None or (p.get("Auth") or {}).get("ApiKeyRequired"):
            problems.append(f"{fn}.{name} OPTIONS {path}: a preflight carries no credentials; no authorizer or key")
        if not any(other[3] == path and other[2] != "OPTIONS" for other in api_events(tpl)):
            problems.append(f"{fn}.{name} OPTIONS {path}: a preflight for a route that does not exist")
    variables = ((props(tpl["Resources"][FUNCTION]).get("Environment") or {}).get("Variables")) or {}
    if referenced_ids(variables.get("CORS_ALLOW_ORIGINS")) != {"CorsAllowOrigins"}:
        problems.append(f"{FUNCTION}: CORS_ALLOW_ORIGINS does not come from the CorsAllowOrigins parameter")
    for name, api in tpl["Resources"].items():
        if api.get("Type") == "AWS::Serverless::Api" and "Cors" in props(api):
            problems.append(
                f"{name}: SAM's Cors adds its own OPTIONS mocks (with `*` unless told); the function answers"
            )
    if "Cors" in ((tpl.get("Globals") or {}).get("Api") or {}):
        problems.append("Globals.Api.Cors: SAM's Cors adds its own OPTIONS mocks; the function answers")
    return problems


def test_the_docs_list_the_bearer_routes():
    assert {("GET", "/v1/requests/{id}"), ("POST", "/v1/requests/{id}/cancel")} <= bearer_routes()


def test_every_public_post_and_bearer_route_has_an_open_preflight(template):
    assert check_preflights(template, bearer_routes()) == []


def test_the_preflights_are_exactly_the_ones_pages_need(template):
    preflighted = {path for _, _, m, path, _ in api_events(template) if m == "OPTIONS"}
    assert preflighted == {
        "/v1/requests",
        "/v1/requests/{id}/verify",
        "/v1/requests/{id}",
        "/v1/requests/{id}/cancel",
        "/v1/requests/{id}/export",
        "/v1/unsubscribe",
    }


# ------------------------------------------------------------------ the check can fail

EVENTS = f"Resources.{FUNCTION}.Properties.Events"


def _route(path: str, method: str) -> dict:
    return {"Type": "Api", "Properties": {"RestApiId": {"Ref": "PublicApi"}, "Path": path, "Method": method}}


MUTATIONS: dict[str, Callable[[dict], None]] = {
    "a JSON POST without its preflight": delete(f"{EVENTS}.VerifyPreflight"),
    "a bearer GET without its preflight": delete(f"{EVENTS}.StatusPreflight"),
    "a new public POST without one": set_(f"{EVENTS}.Feedback", _route("/v1/feedback", "POST")),
    "a preflight behind the authorizer": set_(
        f"{EVENTS}.CancelPreflight.Properties.Auth", {"Authorizer": "ControllerAuthorizer"}
    ),
    "a preflight for no route": set_(f"{EVENTS}.StrayPreflight", _route("/v1/nothing", "options")),
    "a preflight on the controller API": set_(
        f"{EVENTS}.ControllerPreflight", _route("/v1/controller/requests", "options")
    ),
    "origins not from the parameter": set_(f"{EVENTS[: -len('Events')]}Environment.Variables.CORS_ALLOW_ORIGINS", "*"),
    "SAM's own CORS": set_("Resources.PublicApi.Properties.Cors", {"AllowOrigin": "'*'"}),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_the_preflight_check_catches(template, mutation):
    assert check_preflights(template, bearer_routes()) == []
    broken = copy.deepcopy(template)
    MUTATIONS[mutation](broken)
    assert check_preflights(broken, bearer_routes()) != []


def test_a_new_bearer_route_in_the_docs_needs_a_preflight(template):
    doc = "| `GET /v1/requests/{id}/receipt` | `Authorization: Bearer <status_token>` | a receipt |\n"
    broken = copy.deepcopy(template)
    set_(f"{EVENTS}.Receipt", _route("/v1/requests/{id}/receipt", "GET"))(broken)
    assert check_preflights(broken, bearer_routes() | bearer_routes(doc)) != []
