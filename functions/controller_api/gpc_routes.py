"""Controller route for Global Privacy Control: a site forwards a visitor's signal.

Included by app.py with `app.include_router(gpc_routes.router)`; app.py's error handlers apply.
The caller is the controller the authorizer let through, re-checked against its current key. The
rules (the visitor id's form, the keyed hash, once per controller and visitor, the ledger's
withdrawal, the `consent.gpc` event) live in rightsdesk.audience.gpc. Nothing here logs the visitor id.
"""

from __future__ import annotations

from typing import Annotated

import calling  # this function's own module: who calls, the answer's shape
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit

from rightsdesk import audience
from rightsdesk.platform import http
from rightsdesk.store.items.controllers import ControllerItem

logger = Logger(child=True)
metrics = Metrics()
router = Router()


def _caller() -> ControllerItem:
    return calling.caller(router.current_event, logger)


# The body is audience.forms.GpcSignal, a pydantic model built by the route's first use, not when
# this function starts; the rules (rightsdesk.audience.gpc and the consent ledger) load with it.

_TIME = {"type": "string", "format": "date-time"}
RECORDED = http.object_schema(
    {
        "status": {
            "enum": ["recorded", "already_recorded"],
            "description": "already_recorded: you forwarded this visitor before; nothing new was recorded",
        },
        "signal_id": {
            "type": "string",
            "description": "Ours for this visitor and you; the `consent.gpc` event names it",
        },
        "controller_id": {"type": "string"},
        "purposes": {"type": "array", "items": {"type": "string"}},
        "source": {"const": "gpc"},
        "received_at": _TIME,
        "seen_at": {"type": ["string", "null"], "format": "date-time"},
        "conflicts": {
            "type": "array",
            "items": {"type": "string"},
            "description": "`<purpose>:granted:<source>@<time>` for each explicit consent the signal overrode",
        },
    }
)


@router.post(
    "/v1/controller/gpc",
    summary="Forward a visitor's Global Privacy Control signal: a withdrawal of sale/share and "
    "cross-context advertising, recorded once per visitor; sent back as `consent.gpc` to a webhook",
    responses=http.responses(
        200,
        "The signal as recorded (first time or before)",
        RECORDED,
        *http.ANY_AUTHORIZED_ROUTE,
        *http.BODY_ERRORS,
        codes={422: "Codes: `invalid_input` (`fields`: `visitor_id`, `seen_at: in_future`, `<field>: unknown_field`)"},
    ),
)
def forward_gpc(signal: Annotated[audience.forms.GpcSignal, Body()]):
    from rightsdesk.audience import gpc

    controller = _caller()
    forwarded = gpc.forward(controller.controller_id, signal.visitor_id, seen_at=signal.seen_at)
    status = "recorded" if forwarded.created else "already_recorded"
    metrics.add_metric(name="GpcSignalForwarded", unit=MetricUnit.Count, value=1 if forwarded.created else 0)
    logger.info("gpc signal forwarded", extra={"signal_id": forwarded.signal.signal_id, "status": status})
    return calling.json_response(200, {"status": status, **gpc.view(forwarded.signal)})
