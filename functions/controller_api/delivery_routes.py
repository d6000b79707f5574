"""Controller routes of the delivery log: the attempts, redelivery, and the endpoint's state.

Included by app.py with `app.include_router(delivery_routes.router)`; app.py's error handlers
apply. The caller is the controller the authorizer let through, re-checked against its current
key (rightsdesk.routing.controller_requests.caller); a delivery of another controller is 404,
never 403. Rules live in rightsdesk.routing.delivery_log, which the first call of a route here
imports (`routing.delivery_log`): the routes are declared with its words alone
(rightsdesk.routing.delivery_words), so the function's other routes do not load the log at its
start. Nothing here logs a body or a URL.
"""

from __future__ import annotations

from typing import Annotated

import calling  # this function's own module: who calls, the answer's shape
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.metrics import MetricUnit

from rightsdesk import routing
from rightsdesk.kernel.moments import Moment
from rightsdesk.platform import http
from rightsdesk.routing import delivery_words
from rightsdesk.store.items.controllers import ControllerItem

logger = Logger(child=True)
metrics = Metrics()
router = Router()


def _caller() -> ControllerItem:
    return calling.caller(router.current_event, logger)


_json = calling.json_response


# ------------------------------------------------------------------ documented shapes

# The bulk redelivery's body is routing.controller_forms.RedeliverSince, a pydantic model built by
# the route's first use, not when this function starts.


# The answers' shapes are JSON Schema written out, not pydantic models: nothing validates them, and
# building a model's schema cost this function's cold start about 20 ms.
def _text(description: str | None = None, *, nullable: bool = False) -> dict:
    schema: dict = {"type": ["string", "null"] if nullable else "string"}
    return {**schema, "description": description} if description else schema


def _number(description: str | None = None, *, nullable: bool = False) -> dict:
    schema: dict = {"type": ["integer", "null"] if nullable else "integer"}
    return {**schema, "description": description} if description else schema


ATTEMPT = {
    **http.object_schema(
        {
            "attempt_id": _text(),
            "webhook_id": _text("The `webhook-id` header: the same on every attempt of one delivery"),
            "event_type": {"enum": list(delivery_words.EVENT_TYPE_NAMES)},
            "attempted_at": {"type": "string", "format": "date-time"},
            "attempt": _number("1 on the first try; a retry or a redelivery counts on"),
            "outcome": {"enum": list(delivery_words.OUTCOMES)},
            "http_status": _number("Your endpoint's answer; null if there was none", nullable=True),
            "latency_ms": _number(nullable=True),
            "error_class": _text(
                "timeout, connection, tls, ssrf_refused, no_endpoint, http_3xx, http_4xx, http_5xx, gone "
                "(410: the endpoint is disabled), purged, request_gone; null when delivered",
                nullable=True,
            ),
            "redelivery": {"type": "boolean", "description": "Sent because you asked for a redelivery"},
        },
        {
            name: _text(nullable=True)
            for name in ("request_id", "notice", "incident_id", "doc", "version", "signal_id", "execution_id")
        },
    ),
    "description": "One attempt to deliver a webhook event: never its body, a header value or the URL.",
}
LISTING = http.object_schema(
    {"deliveries": {"type": "array", "items": ATTEMPT}, "next_cursor": {"type": ["string", "null"]}}
)
QUEUED = http.object_schema(
    {
        "webhook_id": {"type": "string"},
        "redelivery_id": {"type": "string"},
        "status": {"enum": ["queued", "already_queued"]},
    }
)
BULK = http.object_schema(
    {
        "queued": {"type": "array", "items": {"type": "string"}},
        "already_queued": {"type": "array", "items": {"type": "string"}},
        "skipped": {
            "type": "array",
            "items": http.object_schema({"webhook_id": {"type": "string"}, "reason": {"type": "string"}}),
        },
        "more": {"type": "boolean", "description": "the cap was reached: call again from next_since for the rest"},
        "next_since": {"type": ["string", "null"], "format": "date-time"},
        "cap": {"type": "integer"},
    }
)
STATE = http.object_schema(
    {
        "delivery": _text(),
        "state": _text("enabled | disabled | not_webhook"),
        "disabled_reason": _text("gone_410 (it answered 410) | operator; null while enabled", nullable=True),
        "disabled_since": {"type": ["string", "null"], "format": "date-time"},
        "endpoint_host": _text("The host of your endpoint; never its path or query", nullable=True),
    }
)
STATE_WITH_ATTEMPT = {
    **STATE,
    "properties": {**STATE["properties"], "last_attempt": {"anyOf": [ATTEMPT, {"type": "null"}]}},
}
TEST_QUEUED = http.object_schema(
    {"test_id": {"type": "string"}, "webhook_id": {"type": "string"}, "status": {"enum": ["queued"]}}
)


# The codes each route's own refusals carry (docs/controller-api.md, "Delivery log and redelivery").
_NOT_WEBHOOK = "`not_webhook` (your delivery is not by webhook)"
_DISABLED = "`webhook_disabled` (your endpoint is disabled: enable it first)"
LIST_CODES = {
    422: "Codes: `invalid_input` (`fields`: `status`, `event_type`: `invalid_choice`; `since`: `after_until`; "
    "`cursor: invalid_cursor`; `limit`, `since`, `until`)"
}
REDELIVER_CODES = {
    404: "Codes: `not_found` (no such delivery, another controller's, or past its 90 days)",
    409: f"Codes: `purged` (`fields` names the purged fields), `request_gone`, `request_cancelled`, "
    f"`not_redeliverable` (a test: send a new one), {_DISABLED}, {_NOT_WEBHOOK}",
}
BULK_CODES = {
    409: f"Codes: {_DISABLED}, {_NOT_WEBHOOK}",
    422: "Codes: `invalid_input` (`fields`: `since: required`, `since: after_until`, `event_type: invalid_choice`, "
    "`<field>: unknown_field`)",
}
ENABLE_CODES = {
    409: f"Codes: `webhook_enabled` (nothing to enable), `operator_disabled` (only the operator may), {_NOT_WEBHOOK}"
}


# ------------------------------------------------------------------ routes


@router.get(
    "/v1/controller/deliveries",
    summary="Your webhook delivery attempts, newest first (kept 90 days; no bodies)",
    responses=http.responses(200, "A page of attempts", LISTING, *http.ANY_AUTHORIZED_ROUTE, 422, codes=LIST_CODES),
)
def list_deliveries(
    status: Annotated[delivery_words.Outcome | None, Query()] = None,
    event_type: Annotated[delivery_words.EventType | None, Query()] = None,
    since: Annotated[Moment | None, Query(description="Attempts at or after this time (ISO 8601)")] = None,
    until: Annotated[Moment | None, Query(description="Attempts at or before this time (ISO 8601)")] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=delivery_words.MAX_PAGE)] = delivery_words.DEFAULT_PAGE,
):
    controller = _caller()
    filters = routing.delivery_log.Filters(status=status, event_type=event_type, since=since, until=until)
    items, next_cursor = routing.delivery_log.list_page(controller.controller_id, filters, cursor=cursor, limit=limit)
    return _json(200, {"deliveries": items, "next_cursor": next_cursor})


@router.post(
    "/v1/controller/deliveries/<webhook_id>/redeliver",
    summary="Send one delivery again (same webhook-id); asked twice, it is queued once",
    responses=http.responses(
        202, "Queued (or already queued)", QUEUED, *http.ANY_AUTHORIZED_ROUTE, 404, 409, 415, codes=REDELIVER_CODES
    ),
)
def redeliver(webhook_id: str):
    answer = routing.delivery_log.redeliver(_caller(), webhook_id)
    metrics.add_metric(name="RedeliveryRequested", unit=MetricUnit.Count, value=1)
    logger.info("redelivery asked", extra={"webhook_id": webhook_id, "status": answer["status"]})
    return _json(202, answer)


@router.post(
    "/v1/controller/deliveries/redeliver",
    summary=f"Send again every delivery not delivered since a time (at most {delivery_words.MAX_BULK_REDELIVERY} a call)",
    responses=http.responses(
        202,
        "What was queued, already queued, or skipped and why",
        BULK,
        *http.ANY_AUTHORIZED_ROUTE,
        *http.BODY_ERRORS,
        409,
        codes=BULK_CODES,
    ),
)
def redeliver_failed(asked: Annotated[routing.controller_forms.RedeliverSince, Body()]):
    answer = routing.delivery_log.redeliver_failed(
        _caller(), since=asked.since, until=asked.until, event_type=asked.event_type
    )
    metrics.add_metric(name="RedeliveryRequested", unit=MetricUnit.Count, value=len(answer["queued"]))
    logger.info(
        "bulk redelivery asked",
        extra={"queued": len(answer["queued"]), "skipped": len(answer["skipped"]), "more": answer["more"]},
    )
    return _json(202, answer)


@router.get(
    "/v1/controller/webhook",
    summary="Your webhook endpoint: enabled or disabled (why, since when), and its latest attempt",
    responses=http.responses(200, "The endpoint's state", STATE_WITH_ATTEMPT, *http.ANY_AUTHORIZED_ROUTE),
)
def webhook_state():
    return _json(200, routing.delivery_log.endpoint_state(_caller()))


@router.post(
    "/v1/controller/webhook/enable",
    summary="Enable your endpoint again after a 410: a test event is queued; a 2xx answer to it enables it",
    responses=http.responses(
        202, "The test event is queued", TEST_QUEUED, *http.ANY_AUTHORIZED_ROUTE, 409, 415, codes=ENABLE_CODES
    ),
)
def enable_webhook():
    answer = routing.delivery_log.ask_enable(_caller())
    logger.info("webhook enabling test queued", extra={"test_id": answer["test_id"]})
    return _json(202, answer)
