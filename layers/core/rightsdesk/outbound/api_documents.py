"""The two OpenAPI 3.1 documents, from what powertools' event handler generates of each API's routes.

The event handler writes paths, parameters, bodies and each route's documented answers
(rightsdesk.platform.http.responses); this module adds what a route cannot say of itself: the
security schemes, the form-encoded alternative of every JSON body (the validation middleware reads
both), and for the controller API the webhook event catalog (rightsdesk.outbound.event_catalog).
Served at GET /openapi.json and GET /v1/controller/openapi.json, written to docs/openapi/ by
`make openapi`; tests hold the committed files equal to these.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from rightsdesk.platform import http

VERSION = "1.0.0"

# The controller API: `Authorization: Bearer <API key>` on every route (ControllerAuthorizer).
API_KEY = "apiKey"
CONTROLLER_SECURITY_SCHEMES: dict[str, Any] = {
    API_KEY: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "rdk_…",
        "description": "The controller's API key, from `rightsdesk controllers add` or `rotate-key`; shown once, "
        "stored only as a keyed hash. A key sees only its own controller's requests.",
    }
}

# The public API: a request's status token, in the Authorization header or (links from the status
# page) the `token` query parameter.
STATUS_TOKEN = "statusToken"
STATUS_TOKEN_IN_LINK = "statusTokenInLink"
PUBLIC_SECURITY_SCHEMES: dict[str, Any] = {
    STATUS_TOKEN: {
        "type": "http",
        "scheme": "bearer",
        "description": "The request's status token, answered once by the verification "
        "(`status_token`) and carried by the status link mailed to the subject",
    },
    STATUS_TOKEN_IN_LINK: {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "The same status token in a link (a browser cannot send a header from a link)",
    },
}
STATUS_TOKEN_REQUIRED = [{STATUS_TOKEN: []}]
STATUS_TOKEN_OR_LINK = [{STATUS_TOKEN: []}, {STATUS_TOKEN_IN_LINK: []}]


class Resolver(Protocol):
    def get_openapi_json_schema(self, **options: Any) -> str: ...


def public_api(app: Resolver) -> dict[str, Any]:
    document = json.loads(
        app.get_openapi_json_schema(
            title="rightsdesk public API",
            version=VERSION,
            description="Submit, verify, follow and cancel data-subject requests; the policy archive; "
            "one-click unsubscribe; exports of the operator's own data. No key: the status token opens "
            'a request\'s own routes. Errors are `{"error": {"code", "message", "fields"?}}`.',
            security_schemes=PUBLIC_SECURITY_SCHEMES,
        )
    )
    return _finished(document)


def controller_api(app: Resolver) -> dict[str, Any]:
    from rightsdesk.outbound import event_catalog  # the webhook schemas: this document alone needs them

    document = json.loads(
        app.get_openapi_json_schema(
            title="rightsdesk controller API",
            version=VERSION,
            description="Fetch the data-subject requests routed to you, report progress, manage your "
            "webhook. Every route needs your API key (`Authorization: Bearer rdk_…`); this document "
            'itself needs none. Errors are `{"error": {"code", "message", "fields"?}}`. The '
            "`webhooks` section is the catalog of the events rightsdesk sends you, each with the JSON "
            "Schema of its whole body; a published event type changes only additively, a breaking "
            "change is a new type name (`….v2`).",
            security_schemes=CONTROLLER_SECURITY_SCHEMES,
            security=[{API_KEY: []}],
        )
    )
    document["webhooks"] = event_catalog.openapi_webhooks()
    return _finished(document)


def connector_callback(app: Resolver) -> dict[str, Any]:
    """The HTTP connector's callback route (ConnectorCallbackFunction, on the public API): its body is
    read raw (the signature covers the bytes), so its schema is added here from the core's model."""
    from rightsdesk.connectors import callback_body

    document = json.loads(
        app.get_openapi_json_schema(
            title="rightsdesk connector callback",
            version=VERSION,
            description="Where an HTTP connector's product reports work it answered 202 to: a one-time URL "
            "offered in the signed request, signed back with the connector's secret (Standard Webhooks). "
            'Errors are `{"error": {"code", "message", "fields"?}}`.',
        )
    )
    schema = callback_body.CallbackBody.model_json_schema()
    for item in document.get("paths", {}).values():
        for operation in item.values():
            operation["requestBody"] = {"required": True, "content": {http.JSON: {"schema": schema}}}
    return _answers_before_any_route(_validation_errors_in_our_shape(document))


def _finished(document: dict[str, Any]) -> dict[str, Any]:
    return _accept_forms(_answers_before_any_route(_validation_errors_in_our_shape(document)))


# What any operation may answer besides its own, each in the error shape: the body checks that run
# before every route (rightsdesk.platform.api_gateway: 400 not UTF-8 or unreadable JSON, 413 too
# large), a fault of ours (500), and API Gateway's own answer when the function fails or times out
# (any 5xx; template.yaml GatewayResponses DEFAULT_5XX).
_GATEWAY_5XX = {
    "description": "The function failed or timed out: API Gateway's own answer (`internal_error`); retry later",
    "content": {http.JSON: {"schema": http.ERROR_SCHEMA}},
}


def _answers_before_any_route(document: dict[str, Any]) -> dict[str, Any]:
    before = {str(status): answer for status, answer in http.responses(200, "", None, 400, 413, 500).items()}
    before.pop("200")
    before["5XX"] = _GATEWAY_5XX
    for item in document.get("paths", {}).values():
        for operation in item.values():
            answers = operation.setdefault("responses", {})
            for status, answer in before.items():
                answers.setdefault(status, json.loads(json.dumps(answer)))
    return document


# powertools documents a 422 in its own validation error shape on every route that validates and
# names no 422; rightsdesk.platform.api_errors answers it in ours.
_POWERTOOLS_VALIDATION = "#/components/schemas/HTTPValidationError"


def _validation_errors_in_our_shape(document: dict[str, Any]) -> dict[str, Any]:
    ours = http.responses(200, "", None, 422)[422]
    for item in document.get("paths", {}).values():
        for operation in item.values():
            answer = operation.get("responses", {}).get("422") or {}
            if (answer.get("content") or {}).get(http.JSON, {}).get("schema", {}).get("$ref") == _POWERTOOLS_VALIDATION:
                operation["responses"]["422"] = ours
    schemas = document.get("components", {}).get("schemas", {})
    if "ValidationError" not in json.dumps(document.get("paths")):
        for name in ("HTTPValidationError", "ResponseValidationError", "ValidationError"):
            schemas.pop(name, None)
    return document


def _accept_forms(document: dict[str, Any]) -> dict[str, Any]:
    """Every JSON body may also come form-encoded, the same fields (rightsdesk.platform.http.check_body,
    rightsdesk.kernel.form_bodies), unless a field is an object, which a form cannot carry (the
    execute route's identities): that body is JSON only."""
    schemas = document.get("components", {}).get("schemas", {})
    for item in document.get("paths", {}).values():
        for operation in item.values():
            content = (operation.get("requestBody") or {}).get("content") or {}
            if http.JSON in content and _flat(content[http.JSON]["schema"], schemas):
                content.setdefault(http.FORM, {"schema": content[http.JSON]["schema"]})
    return document


def _flat(schema: dict[str, Any], schemas: dict[str, Any]) -> bool:
    reference = schema.get("$ref", "")
    if reference.startswith("#/components/schemas/"):
        schema = schemas.get(reference.rsplit("/", 1)[-1], {})
    return all(field.get("type") != "object" for field in (schema.get("properties") or {}).values())
