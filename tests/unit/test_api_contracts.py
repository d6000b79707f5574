"""The OpenAPI documents (the controller API, the public API, the connector callback route) hold the code: they validate (openapi-spec-validator), the committed
files in docs/openapi/ are what the code generates, every route the apps register (their routers'
included: a new route module is covered without a change here) and every route the template wires
to them is documented, and every documented operation names its errors in the error shape.

The documents come from the handler modules, each imported in a child process
(scripts/openapi_documents.py), exactly as GET /openapi.json and GET /v1/controller/openapi.json serve them.
"""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from rightsdesk.outbound import api_documents, event_catalog
from rightsdesk.platform import http
from scripts import openapi_documents
from tests.support.openapi import callback_openapi, controller_openapi, public_openapi, resolved
from tests.template.test_auth import api_events
from tests.template.test_template import load_template

DOCUMENTS = {"controller_api": controller_openapi, "public_api": public_openapi, "connector_callback": callback_openapi}
FUNCTIONS = {
    "controller_api": "ControllerApiFunction",
    "public_api": "PublicApiFunction",
    "connector_callback": "ConnectorCallbackFunction",
}
# Routes a document leaves out, and why: pages for browsers, and the documents themselves.
UNDOCUMENTED = {
    ("GET", "/"): "the request form (a page)",
    ("GET", "/verify/{request_id}"): "the code page",
    ("GET", "/status/{request_id}"): "the status page",
    ("GET", "/openapi.json"): "this document",
    ("GET", "/v1/controller/openapi.json"): "this document",
}
# What every controller route may answer besides its own.
CONTROLLER_ANY_ROUTE = {str(status) for status in http.ANY_AUTHORIZED_ROUTE}


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def _template_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


@pytest.mark.parametrize("function", DOCUMENTS)
def test_the_document_is_valid_openapi_3_1(function):
    document = DOCUMENTS[function]()
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_the_committed_documents_are_what_the_code_generates():
    stale = [
        str(path.relative_to(openapi_documents.ROOT))
        for path, text in openapi_documents.expected_files().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert stale == [], f"{', '.join(stale)} differ from the code: run `make openapi` and commit docs/openapi/"


@pytest.mark.parametrize("function", DOCUMENTS)
def test_every_route_the_app_registers_is_documented(function):
    documented = {(method, path) for method, path, _ in operations(DOCUMENTS[function]())}
    registered = openapi_documents.routes(function)
    missing = [(m, p) for m, p, _ in registered if (m, p) not in documented and (m, p) not in UNDOCUMENTED]
    assert missing == []
    hidden = [(m, p) for m, p, included in registered if not included and (m, p) not in UNDOCUMENTED]
    assert hidden == [], "a route left out of the document must say why in UNDOCUMENTED"


@pytest.mark.parametrize("function", DOCUMENTS)
def test_every_route_the_template_wires_to_the_function_is_one_it_registers(function):
    registered = {(m, _template_path(p)) for m, p, _ in openapi_documents.routes(function)}
    wired = {(m, _template_path(p)) for fn, _, m, p, _ in api_events(load_template()) if fn == FUNCTIONS[function]}
    # CORS preflights are answered by the resolver itself (functions/public_api/app.py CORSConfig)
    wired = {(method, path) for method, path in wired if method != "OPTIONS"}
    assert wired and wired <= registered


def test_every_controller_operation_needs_the_key_and_documents_its_errors():
    document = controller_openapi()
    assert document["security"] == [{api_documents.API_KEY: []}]
    assert document["components"]["securitySchemes"][api_documents.API_KEY]["scheme"] == "bearer"
    for method, path, operation in operations(document):
        assert "security" not in operation, f"{method} {path} must not opt out of the key"
        statuses = set(operation["responses"])
        assert CONTROLLER_ANY_ROUTE <= statuses, f"{method} {path}: {sorted(CONTROLLER_ANY_ROUTE - statuses)}"
        if "requestBody" in operation:
            assert {str(status) for status in http.BODY_ERRORS} <= statuses, f"{method} {path}"


def test_every_controller_operation_names_the_codes_of_its_own_errors():
    """A 404, 409 or 422 is the route's own refusal: its description names the codes a client can
    branch on (`Codes: ...`), as the controller API's reference does. A 422 of a route with neither
    a body nor a query parameter is the framework's alone and names none."""
    for method, path, operation in operations(controller_openapi()):
        takes_input = "requestBody" in operation or any(p["in"] == "query" for p in operation.get("parameters", []))
        for status in ("404", "409", "422"):
            answer = operation["responses"].get(status)
            if answer is None or (status == "422" and not takes_input):
                continue
            assert "Codes: `" in answer["description"], f"{method} {path} {status}: {answer['description']}"


@pytest.mark.parametrize("function", DOCUMENTS)
def test_every_error_is_in_the_error_shape_and_every_json_answer_has_its_schema(function):
    document = DOCUMENTS[function]()
    for method, path, operation in operations(document):
        assert {"400", "413", "500", "5XX"} <= set(operation["responses"]), f"{method} {path}"
        for status, answer in operation["responses"].items():
            content = answer.get("content") or {}
            schema = content.get(http.JSON, {}).get("schema")
            if status[0] in "45":
                # an error is JSON in the error shape, or (a link's page) HTML only
                assert schema == http.ERROR_SCHEMA or set(content) == {"text/html"}, f"{method} {path} {status}"
            elif function == "controller_api" and http.JSON in content:
                schema = resolved(document, schema)
                assert schema and (schema.get("properties") or schema.get("items")), f"{method} {path} {status}"


def test_the_controller_document_publishes_the_event_catalog():
    assert controller_openapi()["webhooks"] == event_catalog.openapi_webhooks()


def test_the_public_document_names_the_status_token_the_idempotency_key_and_form_bodies():
    document = public_openapi()
    schemes = document["components"]["securitySchemes"]
    assert schemes[api_documents.STATUS_TOKEN] == api_documents.PUBLIC_SECURITY_SCHEMES[api_documents.STATUS_TOKEN]
    paths = document["paths"]
    assert paths["/v1/requests/{request_id}"]["get"]["security"] == api_documents.STATUS_TOKEN_REQUIRED
    assert paths["/v1/requests/{request_id}/cancel"]["post"]["security"] == api_documents.STATUS_TOKEN_REQUIRED
    assert paths["/v1/requests/{request_id}/export"]["get"]["security"] == api_documents.STATUS_TOKEN_OR_LINK
    [key] = [p for p in paths["/v1/requests"]["post"]["parameters"] if p["in"] == "header"]
    assert key["name"] == "idempotency-key" and key["schema"]["maxLength"] == http.MAX_IDEMPOTENCY_KEY_LENGTH
    assert {"get", "post"} <= set(paths["/v1/unsubscribe"])
    for method, path, operation in operations(document):
        content = (operation.get("requestBody") or {}).get("content") or {}
        if http.JSON in content:
            assert content[http.FORM] == content[http.JSON], f"{method} {path}: no form-encoded body"


def test_make_openapi_refuses_to_publish_a_breaking_event_change(tmp_path, monkeypatch, capsys):
    published = event_catalog.schemas()
    data = published["dsr.request.cancelled"]["properties"]["data"]
    data["properties"]["reason"] = {"type": "string"}  # published once, gone from the code now
    snapshot = tmp_path / "events.snapshot.json"
    snapshot.write_text(openapi_documents.serialized(published))
    for name in ("CONTROLLER_FILE", "PUBLIC_FILE"):
        monkeypatch.setattr(openapi_documents, name, tmp_path / f"{name}.json")
    monkeypatch.setattr(openapi_documents, "SNAPSHOT_FILE", snapshot)
    monkeypatch.setattr(openapi_documents, "DOCS", tmp_path)

    assert openapi_documents.main([]) == 1
    assert "dsr.request.cancelled: data.reason: property removed" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.snapshot.json"], "nothing was written"
    assert openapi_documents.main(["--check"]) == 1, "the stale files are reported"
