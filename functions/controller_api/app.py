"""ControllerApiFunction: a controller's view of its requests. Parses, calls the core, shapes JSON.

Every route sits behind ControllerAuthorizer; the controller id comes from its context and the
key is re-checked against the controller's current one (rightsdesk.routing.controller_requests.caller).
Errors are `{"error": {"code", "message", "fields"?}}` as on the public API. Responses may carry
a subject's personal data until it is purged; nothing here logs a body, a key or a secret.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated

import calling  # this function's own module: who calls, the answer's shape
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsdesk.platform import api_errors, api_gateway, http
from rightsdesk.routing import controller_requests as inbox
from rightsdesk.store.items.controllers import ControllerItem

logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver(enable_validation=True)


def _caller() -> ControllerItem:
    return calling.caller(app.current_event, logger)


_json = calling.json_response


# The answers each route documents (errors in the shape of http.ERROR_SCHEMA), with what every route
# may answer before it runs (http.ANY_AUTHORIZED_ROUTE) and, with a body, http.BODY_ERRORS.
ANY_ROUTE = http.ANY_AUTHORIZED_ROUTE
BODY = http.BODY_ERRORS
CODES = {
    400: "Codes: `malformed_json`, `malformed_body`",
    401: "Codes: `unauthorized` (no key, or a malformed, unknown or rotated-out one)",
    403: "Codes: `forbidden` (the authorizer refused the key)",
    404: "Codes: `not_found` (no such request, another controller's, not routed yet, or past its retention)",
    413: "Codes: `payload_too_large`",
    415: "Codes: `unsupported_media_type`",
    422: "Codes: `invalid_input` (`fields` names each field)",
    429: "Codes: `too_many_requests` (API Gateway's throttling)",
    503: "Codes: `unavailable`",
}


@app.get(
    "/v1/controller/requests",
    summary="List your requests, by status, oldest first",
    responses=http.responses(
        200,
        "A page of requests",
        inbox.LISTING_SCHEMA,
        *ANY_ROUTE,
        422,
        codes={**CODES, 422: "Codes: `invalid_input` (`fields`: `status`, `limit`, `cursor: invalid_cursor`)"},
    ),
)
def list_requests(
    status: Annotated[inbox.VisibleStatus | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=inbox.MAX_PAGE)] = inbox.DEFAULT_PAGE,
):
    controller = _caller()
    items, next_cursor = inbox.list_page(controller.controller_id, status=status, cursor=cursor, limit=limit)
    return _json(200, {"requests": items, "next_cursor": next_cursor})


@app.get(
    "/v1/controller/requests/<request_id>",
    summary="One request; a pull controller's first fetch delivers it",
    responses=http.responses(200, "The request", inbox.DETAIL_SCHEMA, *ANY_ROUTE, 404, codes=CODES),
)
def get_request(request_id: str):
    view = inbox.fetch(_caller(), request_id)
    logger.info("request fetched", extra={"request_id": request_id, "status": view["status"]})
    return _json(200, view)


@app.post(
    "/v1/controller/requests/<request_id>/status",
    summary="Report progress: acknowledged, in_progress, completed, rejected",
    responses=http.responses(
        200,
        "The request as it is now, and who tells the subject",
        inbox.REPORT_ANSWER_SCHEMA,
        *ANY_ROUTE,
        *BODY,
        404,
        409,
        codes={
            **CODES,
            409: "Codes: `illegal_transition` (not a step the lifecycle allows, or it changed meanwhile), "
            "`no_due_date`, `due_date_passed` (an extension after the due date)",
            422: "Codes: `invalid_input` (`fields`: `status: invalid_choice`, `reason: required`, "
            "`extend_to: beyond_legal_limit | not_later | not_allowed`, `<field>: unknown_field`, `body`)",
        },
    ),
)
def report_status(request_id: str, report: Annotated[inbox.StatusReport, Body()]):
    view = inbox.report_status(_caller(), request_id, report)
    metrics.add_metric(name="ControllerStatusReported", unit=MetricUnit.Count, value=1)
    logger.info(
        "status reported",
        extra={"request_id": request_id, "status": view["status"], "extended": report.extend_to is not None},
    )
    return _json(200, view)


@app.post(
    "/v1/controller/webhook/rotate",
    summary="New webhook secret (shown once); every replaced one signs for 24 h more",
    responses=http.responses(
        200,
        "The new secret, shown once",
        inbox.ROTATION_SCHEMA,
        *ANY_ROUTE,
        *BODY,
        409,
        codes={
            **CODES,
            409: "Codes: `not_webhook` (your delivery is not by webhook)",
            429: "Codes: `too_many_rotations` (10 replaced secrets still sign), `too_many_requests`",
        },
    ),
)
def rotate_webhook_secret():
    answer = inbox.rotate_webhook_secret(_caller())
    logger.info("webhook secret rotated")
    return _json(200, answer)


@app.post(
    "/v1/controller/webhook/test",
    summary="Send a signed test event to your webhook",
    responses=http.responses(
        202,
        "Queued: the dispatcher sends a signed `webhook.test` event",
        inbox.TEST_QUEUED_SCHEMA,
        *ANY_ROUTE,
        *BODY,
        409,
        codes={
            **CODES,
            409: "Codes: `not_webhook` (your delivery is not by webhook), "
            "`webhook_disabled` (your endpoint is disabled: POST /v1/controller/webhook/enable sends the test)",
        },
    ),
)
def test_webhook():
    answer = inbox.queue_test_event(_caller())
    logger.info("webhook test queued", extra={"test_id": answer["test_id"]})
    return _json(202, answer)


# ------------------------------------------------------------------ the delivery log, redelivery, the endpoint's state

import delivery_routes  # noqa: E402 - this function's own module, kept with the one line that uses it

app.include_router(delivery_routes.router)

# ------------------------------------------------------------------ Global Privacy Control signals

import gpc_routes  # noqa: E402 - this function's own module, kept with the one line that uses it

app.include_router(gpc_routes.router)

# ------------------------------------------------------------------ executions in the platform's stores (processor role)

import execution_routes  # noqa: E402 - this function's own module, kept with the one line that uses it

app.include_router(execution_routes.router)

# ------------------------------------------------------------------ this API's contract


# No key: the document holds no data (the template wires the route without the authorizer).
@app.get("/v1/controller/openapi.json", include_in_schema=False)
def openapi():
    return _json(200, _document())


@cache
def _document() -> dict:
    from rightsdesk.outbound import api_documents  # the document's builder and the event catalog, on first use

    return api_documents.controller_api(app)


# ------------------------------------------------------------------ errors

api_errors.install(app, logger=logger, metrics=metrics)


# ------------------------------------------------------------------ entry point


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return api_gateway.answer(event, lambda: app.resolve(event, context))
