"""What every route of the controller API does first and last: tell who calls, shape the answer.

The controller id comes from ControllerAuthorizer's context, and the key is checked again against
the controller's current one (rightsdesk.routing.controller_requests.caller): a key rotated or a
controller disabled a moment ago is refused even while API Gateway still caches the authorizer's
answer.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from rightsdesk.platform import http
from rightsdesk.routing import controller_requests as inbox
from rightsdesk.store.items.controllers import ControllerItem


def caller(event: APIGatewayProxyEvent, logger: Logger) -> ControllerItem:
    controller_id = event.request_context.authorizer.get_context().get("controller_id")
    controller = inbox.caller(controller_id, http.bearer_token(event.headers.get("authorization")))
    logger.append_keys(controller_id=controller.controller_id)
    return controller


def json_response(status: int, body: dict) -> Response:
    return Response(status_code=status, content_type=http.JSON, body=body)
