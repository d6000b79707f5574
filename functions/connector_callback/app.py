"""ConnectorCallbackFunction: `POST /v1/connectors/callback/{token}`, where an HTTP connector's
product reports the outcome of work it answered 202 to (rightsdesk.connectors.callbacks).

Public (no API key: the one-time token in the path is the credential) and a function of its own,
not a route of PublicApiFunction: answering the connector state machine's tasks, signing receipt
entries, reading the connectors' signing secrets and writing exports are grants the subject-facing
intake must not hold (docs/decisions.md). Logs name the request and connector ids and the outcome
word; never the token, the body or a header value.
"""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsdesk.connectors import callbacks
from rightsdesk.platform import api_errors, api_gateway, http

logger = Logger()
metrics = Metrics()
warnings.filterwarnings("ignore", message="No application metrics to publish")

app = APIGatewayRestResolver(enable_validation=True)

COMPLETED = http.object_schema(
    {
        "request_id": {"type": "string"},
        "connector_id": {"type": "string"},
        "result": {"type": "string", "enum": ["done", "nothing_found", "failed"]},
    }
)


@app.post(
    "/v1/connectors/callback/<token>",
    summary="An HTTP connector's product reports work it answered 202 to (one-time URL)",
    description="The URL came in the signed request's `data.callback_url`; sign this body as that request "
    "was signed (Standard Webhooks, the connector's secret). Body: `"
    + '{"result": "done"|"nothing_found"|"failed", "erased"?, "remaining"?, "records"?, "failure"?}'
    + "` (docs/connectors.md, HTTP).",
    responses=http.responses(
        200,
        "Recorded; the request's run goes on",
        COMPLETED,
        400,
        401,
        404,
        409,
        410,
        413,
        422,
        429,
        503,
        codes={
            401: "Codes: `bad_signature`, `signature_expired`",
            404: "Codes: `callback_not_found` (an unknown token, or a wrong one)",
            409: "Codes: `callback_used` (this URL was called already), `connector_removed`",
            410: "Codes: `callback_expired` (the step timed out; the request waits for the operator)",
            422: "Codes: `invalid_input` (`fields`)",
        },
    ),
)
def callback(token: str):
    event = app.current_event
    body = event.decoded_body or ""
    completed = callbacks.complete(token, body.encode("utf-8", "surrogatepass"), dict(event.headers or {}))
    metrics.add_metric(name="ConnectorCallbackRecorded", unit=MetricUnit.Count, value=1)
    logger.info(
        "connector callback recorded",
        extra={"request_id": completed.request_id, "connector_id": completed.connector_id, "result": completed.result},
    )
    return Response(
        status_code=200,
        content_type="application/json",
        body={"request_id": completed.request_id, "connector_id": completed.connector_id, "result": completed.result},
    )


api_errors.install(app, logger=logger, metrics=metrics)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return api_gateway.answer(event, lambda: app.resolve(event, context), max_body_bytes=callbacks.MAX_BODY_BYTES)
