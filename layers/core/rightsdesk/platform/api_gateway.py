"""What the two API functions do alike with API Gateway proxy events, around their routers.

The one module of the layer that knows the event's shape; the conventions themselves (error body,
accepted bodies, security headers) live in rightsdesk.platform.http on plain values.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any

from rightsdesk.platform import http
from rightsdesk.platform.config import settings

log = logging.getLogger(__name__)


def answer(
    event: dict,
    resolve: Callable[[], dict],
    *,
    extra_headers: dict[str, str] | None = None,
    max_body_bytes: int | None = None,
) -> dict:
    """The router's answer to `event`, unless its body is refused first; with the security headers,
    which a route's own headers (a page's Content-Security-Policy) override. `max_body_bytes`: a
    route that takes larger bodies than the API's default (an HTTP product's callback)."""
    response = reject_unreadable(event, max_body_bytes) or _resolved(resolve)
    response["headers"] = {**http.SECURITY_HEADERS, **(extra_headers or {}), **(response.get("headers") or {})}
    return response


def base_url(event: Any) -> str:
    """Where the public API is reached, for the links its answers give: PUBLIC_BASE_URL, else the
    address and stage API Gateway says `event` (a powertools proxy event) came in on."""
    configured = settings().public_base_url
    if configured:
        return configured
    context = event.request_context
    return f"https://{context.domain_name}/{context.stage}"


def _resolved(resolve: Callable[[], dict]) -> dict:
    """The router's answer; if something escapes its own error handlers (a fault in the router
    itself), a 500 in the error shape rather than an invocation error API Gateway shows as a 502."""
    try:
        return resolve()
    except Exception as error:  # noqa: BLE001 - the last place an answer can still be shaped
        # The type only: a library's message can quote the data it choked on.
        log.error("unhandled error outside the router", extra={"error_type": type(error).__name__})
        return _error(500, "internal_error", "something went wrong on our side; please try again later")


def _error(status: int, code: str, message: str) -> dict:
    return {
        "statusCode": status,
        "headers": {"Content-Type": http.JSON},
        "body": json.dumps(http.error_body(code, message)),
        "isBase64Encoded": False,
    }


def reject_unreadable(event: dict, max_body_bytes: int | None = None) -> dict | None:
    """Oversized or oddly typed bodies get their 4xx before any parsing or storage."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    body = event.get("body") or ""
    encoded = bool(event.get("isBase64Encoded"))
    size = len(body) * 3 // 4 if encoded else len(body.encode())
    text = http.readable_text(body, encoded)
    rejected = http.check_body(
        event.get("httpMethod", ""),
        headers.get("content-type"),
        size,
        max_body_bytes or settings().max_body_bytes,
        text=text,
    )
    if rejected is None and text and body and http.media_type(headers.get("content-type")) in (http.JSON, ""):
        rejected = http.json_problem(base64.b64decode(body).decode() if encoded else body)
    if rejected is None:
        return None
    return _error(*rejected)
