"""What the two API functions do alike with API Gateway proxy events, around their routers.

The one module of the layer that knows the event's shape; the conventions themselves (error body,
accepted bodies, security headers) live in rightsdesk.http on plain values.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

from rightsdesk import http
from rightsdesk.config import settings


def answer(event: dict, resolve: Callable[[], dict], *, extra_headers: dict[str, str] | None = None) -> dict:
    """The router's answer to `event`, unless its body is refused first; with the security headers,
    which a route's own headers (a page's Content-Security-Policy) override."""
    response = reject_unreadable(event) or resolve()
    response["headers"] = {**http.SECURITY_HEADERS, **(extra_headers or {}), **(response.get("headers") or {})}
    return response


def reject_unreadable(event: dict) -> dict | None:
    """Oversized or oddly typed bodies get their 4xx before any parsing or storage."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    body = event.get("body") or ""
    encoded = bool(event.get("isBase64Encoded"))
    size = len(body) * 3 // 4 if encoded else len(body.encode())
    text = http.readable_text(body, encoded)
    rejected = http.check_body(
        event.get("httpMethod", ""), headers.get("content-type"), size, settings().max_body_bytes, text=text
    )
    if rejected is None and text and body and http.media_type(headers.get("content-type")) in (http.JSON, ""):
        rejected = http.json_problem(base64.b64decode(body).decode() if encoded else body)
    if rejected is None:
        return None
    status, code, message = rejected
    return {
        "statusCode": status,
        "headers": {"Content-Type": http.JSON},
        "body": json.dumps(http.error_body(code, message)),
        "isBase64Encoded": False,
    }
