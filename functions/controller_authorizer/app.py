"""ControllerAuthorizerFunction: API Gateway's REQUEST authorizer for the controller API.

`Authorization: Bearer <api key>` -> the controller it belongs to. API Gateway caches the answer
per header value for ReauthorizeEvery seconds, so the policy allows every controller route, not
just the one asked for. Any refusal raises "Unauthorized", the one message API Gateway turns
into a 401. Neither keys nor their hashes are logged.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerResponse,
    HttpVerb,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsdesk.platform import credentials, http
from rightsdesk.routing import registry

logger = Logger()

CONTROLLER_ROUTES = "/v1/controller/*"


def _authorization_header(event: dict) -> str | None:
    headers = event.get("headers") or {}
    return next((value for name, value in headers.items() if name.lower() == "authorization"), None)


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    api_key = http.bearer_token(_authorization_header(event))
    controller = registry.authenticate(api_key)
    if controller is None:
        reason = "missing" if api_key is None else "malformed" if not credentials.well_formed(api_key) else "unknown"
        logger.info("api key refused", extra={"reason": reason})
        raise Exception("Unauthorized")  # noqa: TRY002 - API Gateway matches this exact message
    logger.info("api key accepted", extra={"controller_id": controller.controller_id})
    response = APIGatewayAuthorizerResponse.from_route_arn(
        event["methodArn"],
        principal_id=controller.controller_id,
        context={"controller_id": controller.controller_id},
    )
    response.allow_route(http_method=HttpVerb.ALL.value, resource=CONTROLLER_ROUTES)
    return response.asdict()
