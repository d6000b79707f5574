"""ControllerApiFunction: a controller's view of its requests. Parses, calls the core, shapes JSON.

Every route sits behind ControllerAuthorizer; the controller id comes from its context and the
key is re-checked against the controller's current one (rightsdesk.routing.controller_requests.caller).
Errors are `{"error": {"code", "message", "fields"?}}` as on the public API. Responses may carry
a subject's personal data until it is purged; nothing here logs a body, a key or a secret.
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsdesk.routing import controller_requests as inbox
from rightsdesk.platform import api_gateway, credentials, http
from rightsdesk.platform.config import settings
from rightsdesk.kernel.errors import RightsdeskError
from rightsdesk.store.items.controllers import ControllerItem

logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver(enable_validation=True)


def _caller() -> ControllerItem:
    event = app.current_event
    controller_id = event.request_context.authorizer.get_context().get("controller_id")
    controller = inbox.caller(controller_id, credentials.bearer(event.headers.get("authorization")))
    logger.append_keys(controller_id=controller.controller_id)
    return controller


def _base_url() -> str:
    configured = settings().public_base_url
    if configured:
        return configured
    context = app.current_event.request_context
    return f"https://{context.domain_name}/{context.stage}"


def _json(status: int, body: dict) -> Response:
    return Response(status_code=status, content_type=http.JSON, body=body)


# The answers each route documents (errors in the shape of http.ERROR_SCHEMA); 401 and 403 also
# come from API Gateway and the authorizer, before the function runs.
LISTING = http.object_schema({"requests": {"type": "array", "items": {"type": "object"}},
                              "next_cursor": {"type": ["string", "null"]}})


@app.get("/v1/controller/requests", summary="List your requests, by status, oldest first",
         responses=http.responses(200, "A page of requests", LISTING, 401, 403, 422, 503))
def list_requests(
    status: Annotated[inbox.VisibleStatus | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=inbox.MAX_PAGE)] = inbox.DEFAULT_PAGE,
):
    controller = _caller()
    items, next_cursor = inbox.list_page(controller.controller_id, status=status, cursor=cursor, limit=limit)
    return _json(200, {"requests": items, "next_cursor": next_cursor})


@app.get("/v1/controller/requests/<request_id>", summary="One request; a pull controller's first fetch delivers it",
         responses=http.responses(200, "The request", None, 401, 403, 404, 503))
def get_request(request_id: str):
    view = inbox.fetch(_caller(), request_id)
    logger.info("request fetched", extra={"request_id": request_id, "status": view["status"]})
    return _json(200, view)


@app.post("/v1/controller/requests/<request_id>/status",
          summary="Report progress: acknowledged, in_progress, completed, rejected",
          responses=http.responses(200, "The request as it is now", None, 400, 401, 403, 404, 409, 413, 415, 422, 503))
def report_status(request_id: str, report: Annotated[inbox.StatusReport, Body()]):
    view = inbox.report_status(_caller(), request_id, report, base_url=_base_url())
    metrics.add_metric(name="ControllerStatusReported", unit=MetricUnit.Count, value=1)
    logger.info("status reported", extra={"request_id": request_id, "status": view["status"],
                                          "extended": report.extend_to is not None})
    return _json(200, view)


@app.post("/v1/controller/webhook/rotate",
          summary="New webhook secret (shown once); every replaced one signs for 24 h more",
          responses=http.responses(200, "The new secret, shown once", None, 401, 403, 409, 413, 415, 429, 503))
def rotate_webhook_secret():
    answer = inbox.rotate_webhook_secret(_caller())
    logger.info("webhook secret rotated")
    return _json(200, answer)


@app.post("/v1/controller/webhook/test", summary="Send a signed test event to your webhook",
          responses=http.responses(202, "Queued", None, 401, 403, 409, 413, 415, 503))
def test_webhook():
    answer = inbox.queue_test_event(_caller())
    logger.info("webhook test queued", extra={"test_id": answer["test_id"]})
    return _json(202, answer)


# ------------------------------------------------------------------ errors


@app.exception_handler(RightsdeskError)
def domain_error(error: RightsdeskError) -> Response:
    return _json(error.status, http.error_body(error.code, error.message, error.fields))


@app.exception_handler(RequestValidationError)
def validation_error(error: RequestValidationError) -> Response:
    status, code, fields = http.field_errors(error.errors())
    message = "the request body is not valid JSON" if code == "malformed_json" else "some fields are not valid"
    return _json(status, http.error_body(code, message, fields))


@app.not_found
def no_route(_: NotFoundError) -> Response:
    return _json(404, http.error_body("not_found", "no such resource"))


@app.exception_handler(Exception)
def unexpected(error: Exception) -> Response:
    if http.is_transient(error):  # throttled past the SDK's retries: the client may simply retry
        logger.warning("backend busy", extra={"error_type": type(error).__name__})
        metrics.add_metric(name="BackendBusy", unit=MetricUnit.Count, value=1)
        busy = _json(503, http.error_body("unavailable", "we are busy; please retry in a moment"))
        busy.headers["Retry-After"] = "1"
        return busy
    # The type only: messages of library errors can quote the data they choked on.
    logger.error("unhandled error", extra={"error_type": type(error).__name__})
    metrics.add_metric(name="UnhandledError", unit=MetricUnit.Count, value=1)
    return _json(500, http.error_body("internal_error", "something went wrong on our side; please try again later"))


# ------------------------------------------------------------------ entry point


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return api_gateway.answer(event, lambda: app.resolve(event, context))

