"""The error answers of both API functions, installed on their resolvers by one call.

Every error is `{"error": {"code", "message", "fields"?}}` with its status: a domain error
(rightsdesk.kernel.errors) as it says, a validation error as a 400 or 422 naming each field, an
idempotent call still in flight as a 409, an unknown route as a 404. Anything else is a 503 with
Retry-After when AWS asked us to slow down, else a 500 that says nothing about internals; only the
error's type is logged, since library messages can quote the data they choked on.

A function whose callers include browsers passes `pages`: each hook answers with a page for a
browser, or None for the JSON answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.metrics import MetricUnit

from rightsdesk.kernel.errors import RateLimited, RightsdeskError
from rightsdesk.platform import http
from rightsdesk.platform.handler_support import AlreadyInProgress


@dataclass(frozen=True)
class ErrorPages:
    """Pages for browsers; each returns None when the caller wants JSON."""

    error: Callable[[int, str, dict[str, str], str], Response | None]  # (status, code, fields, message)
    not_found: Callable[[], Response | None]
    server_error: Callable[[], Response | None]


def json_error(status: int, code: str, message: str, fields: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=http.JSON, body=http.error_body(code, message, fields))


def install(
    app: Any, *, logger: Any, metrics: Any, pages: ErrorPages | None = None, rate_limited_metric: str | None = None
) -> None:
    """Register the error handlers on `app` (a powertools resolver). `rate_limited_metric` counts
    RateLimited answers under that name."""

    @app.exception_handler(RightsdeskError)
    def domain_error(error: RightsdeskError) -> Response:
        answer = (pages and pages.error(error.status, error.code, error.fields, error.message)) or json_error(
            error.status, error.code, error.message, error.fields
        )
        if isinstance(error, RateLimited):
            answer.headers["Retry-After"] = str(error.retry_after)
            if rate_limited_metric:
                metrics.add_metric(name=rate_limited_metric, unit=MetricUnit.Count, value=1)
        return answer

    @app.exception_handler(RequestValidationError)
    def validation_error(error: RequestValidationError) -> Response:
        status, code, fields = http.field_errors(error.errors())
        message = "the request body is not valid JSON" if code == "malformed_json" else "some fields are not valid"
        return (pages and pages.error(status, code, fields, message)) or json_error(status, code, message, fields)

    @app.exception_handler(AlreadyInProgress)
    def duplicate_in_flight(_: Exception) -> Response:
        return json_error(409, "in_progress", "the same request is being processed; retry shortly")

    @app.not_found
    def no_route(_: NotFoundError) -> Response:
        return (pages and pages.not_found()) or json_error(404, "not_found", "no such resource")

    @app.exception_handler(Exception)
    def unexpected(error: Exception) -> Response:
        if http.is_transient(error):
            # AWS throttled us past the SDK's retries: the client may simply retry (an Idempotency-Key
            # makes a retried submission safe).
            logger.warning("backend busy", extra={"error_type": type(error).__name__})
            metrics.add_metric(name="BackendBusy", unit=MetricUnit.Count, value=1)
            busy = json_error(503, "unavailable", "we are busy; please retry in a moment")
            busy.headers["Retry-After"] = "1"
            return busy
        logger.error("unhandled error", extra={"error_type": type(error).__name__})
        metrics.add_metric(name="UnhandledError", unit=MetricUnit.Count, value=1)
        if pages is not None:
            try:
                page = pages.server_error()
            except Exception:  # noqa: BLE001 - a page that cannot render falls back to the JSON answer
                logger.error("error page failed")
            else:
                if page is not None:
                    return page
        return json_error(500, "internal_error", "something went wrong on our side; please try again later")
