"""HTTP conventions shared by the API functions, on plain values (no event shapes here).

Error bodies are `{"error": {"code", "message", "fields"?}}`; field codes are stable words a
page can translate ("required", "invalid_email", ...) and never echo what was typed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
# RFC 8058: a mail client's one-click unsubscribe POST SHOULD be multipart/form-data.
MULTIPART = "multipart/form-data"
ACCEPTED_CONTENT_TYPES = (JSON, FORM, MULTIPART)

SECURITY_HEADERS: dict[str, str] = {
    # JSON answers load nothing; HTML pages replace this with their own hash-based policy
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}

# pydantic error type -> the field code the form and API clients see
_FIELD_CODES = {
    "missing": "required",
    "string_too_short": "required",
    "string_too_long": "too_long",
    "too_long": "too_long",
    "enum": "invalid_choice",
    "literal_error": "invalid_choice",
    "extra_forbidden": "unknown_field",
    "string_type": "invalid_input",
    "list_type": "invalid_input",
}


def error_body(code: str, message: str, fields: Mapping[str, str] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = dict(fields)
    return {"error": error}


def wants_html(accept: str | None) -> bool:
    """Browsers ask for text/html; API clients (curl's */*, fetch with JSON) get JSON."""
    return "text/html" in (accept or "").lower()


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_body(method: str, content_type: str | None, body_size: int, max_body_bytes: int) -> tuple[int, str, str] | None:
    """Reject what no route accepts before anything parses it: (status, code, message) or None."""
    if body_size > max_body_bytes:
        return 413, "payload_too_large", f"the request body is larger than {max_body_bytes // 1024} KB"
    if method.upper() in ("POST", "PUT", "PATCH") and body_size:
        kind = media_type(content_type)
        if kind and kind not in ACCEPTED_CONTENT_TYPES:
            return 415, "unsupported_media_type", "send application/json or application/x-www-form-urlencoded"
    return None


def _field_code(error: Mapping[str, Any], field: str) -> str:
    kind = str(error.get("type", ""))
    if kind == "string_pattern_mismatch":
        return {"email": "invalid_email", "code": "invalid_code"}.get(field, "invalid_format")
    if kind == "value_error" and "purposes_required" in str(error.get("msg", "")):
        return "purposes_required"
    return _FIELD_CODES.get(kind, "invalid_input")


def field_errors(errors: Iterable[Mapping[str, Any]]) -> tuple[int, str, dict[str, str]]:
    """Turn validation errors into (status, code, {field: code}); never copies the input."""
    fields: dict[str, str] = {}
    for error in errors:
        if error.get("type") == "json_invalid":
            return 400, "malformed_json", {}
        location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
        if str(error.get("type")) == "value_error" and "purposes_required" in str(error.get("msg", "")):
            fields["purposes"] = "purposes_required"
            continue
        if error.get("type") in ("model_attributes_type", "dict_type") and not location:
            return 422, "invalid_input", {"body": "invalid_input"}
        field = location[0] if location else "body"
        fields.setdefault(field, _field_code(error, field))
    return 422, "invalid_input", fields
