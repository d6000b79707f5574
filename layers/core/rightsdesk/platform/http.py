"""HTTP conventions shared by the API functions, on plain values (no event shapes here).

Error bodies are `{"error": {"code", "message", "fields"?}}`; field codes are stable words a
page can translate ("required", "invalid_email", ...) and never echo what was typed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
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
    "invalid_characters": "invalid_characters",  # rightsdesk.kernel.free_text
    "string_unicode": "invalid_characters",  # a lone surrogate
}


def error_body(code: str, message: str, fields: Mapping[str, str] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = dict(fields)
    return {"error": error}


# RFC 6750 section 2.1: credentials = "Bearer" 1*SP b64token, the scheme matched without regard to
# case (RFC 9110 section 11.1). The field value's own leading and trailing whitespace is not part of
# it (RFC 9110 section 5.5). A token with a space or a tab inside is not a b64token: no token.
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*)")


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (RFC 6750); None for any other shape."""
    match = _BEARER.fullmatch((authorization or "").strip(" \t"))
    return match.group(1) if match else None


def wants_html(accept: str | None) -> bool:
    """Browsers ask for text/html; API clients (curl's */*, fetch with JSON) get JSON."""
    return "text/html" in (accept or "").lower()


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_body(
    method: str, content_type: str | None, body_size: int, max_body_bytes: int, *, text: bool = True
) -> tuple[int, str, str] | None:
    """Reject what no route accepts before anything parses it: (status, code, message) or None.
    `text` is False for a body that is not UTF-8 (see readable_text): no route reads bytes."""
    if body_size > max_body_bytes:
        return 413, "payload_too_large", f"the request body is larger than {max_body_bytes // 1024} KB"
    if not text:
        return 400, "malformed_body", "the request body is not UTF-8 text"
    if method.upper() in ("POST", "PUT", "PATCH") and body_size:
        kind = media_type(content_type)
        if kind and kind not in ACCEPTED_CONTENT_TYPES:
            return 415, "unsupported_media_type", "send application/json or application/x-www-form-urlencoded"
    return None


def readable_text(body: str, base64_encoded: bool) -> bool:
    """True if the body is text: API Gateway hands over bytes that are not UTF-8 base64-encoded."""
    if not base64_encoded:
        return True
    try:
        base64.b64decode(body, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    return True


# No route reads a body nested deeper than a few levels, or a number longer than a date: deeper or
# longer JSON is refused before the router, the validator or Python's int() chokes on it (a
# RecursionError or int()'s digit limit would otherwise surface as a 500).
MAX_JSON_DEPTH = 32
MAX_JSON_NUMBER_DIGITS = 64


class _NumberTooLong(ValueError):
    pass


def _bounded_number(text: str) -> str:
    if len(text) > MAX_JSON_NUMBER_DIGITS:
        raise _NumberTooLong()
    return text


def json_problem(body: str) -> tuple[int, str, str] | None:
    """(status, code, message) for a JSON body no route can read safely: nested deeper than
    MAX_JSON_DEPTH or with an overlong number. None for anything else, malformed JSON included
    (the router's validation answers that with its own 400)."""
    try:
        parsed = json.loads(body, parse_int=_bounded_number, parse_float=_bounded_number)
    except _NumberTooLong:
        return 400, "malformed_json", f"a number in the request body is longer than {MAX_JSON_NUMBER_DIGITS} digits"
    except RecursionError:
        return 400, "malformed_json", f"the request body nests deeper than {MAX_JSON_DEPTH} levels"
    except ValueError:
        return None
    level = [parsed]
    for _ in range(MAX_JSON_DEPTH + 1):
        level = [
            inner
            for value in level
            if isinstance(value, (dict, list))
            for inner in (value.values() if isinstance(value, dict) else value)
        ]
        if not level:
            return None
    return 400, "malformed_json", f"the request body nests deeper than {MAX_JSON_DEPTH} levels"


# IETF httpapi Idempotency-Key draft: a String (printable ASCII); we take at most this many.
MAX_IDEMPOTENCY_KEY_LENGTH = 255


def valid_idempotency_key(value: str) -> bool:
    return 0 < len(value) <= MAX_IDEMPOTENCY_KEY_LENGTH and all(" " <= char <= "~" for char in value)


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
        location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path", "header")]
        if str(error.get("type")) == "value_error" and "purposes_required" in str(error.get("msg", "")):
            fields["purposes"] = "purposes_required"
            continue
        if error.get("type") in ("model_attributes_type", "dict_type") and not location:
            return 422, "invalid_input", {"body": "invalid_input"}
        field = location[0] if location else "body"
        fields.setdefault(field, _field_code(error, field))
    return 422, "invalid_input", fields


# ------------------------------------------------------------------ OpenAPI: the answers a route documents

# The error body every API answer uses, as JSON Schema: fuzzers and clients check answers against it.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "description": "A stable word: not_found, invalid_input, ..."},
                "message": {"type": "string", "description": "For people; never echoes the input"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }
    },
}

_ERROR_DESCRIPTIONS = {
    400: "Malformed JSON, or a wrong code",
    401: "A valid token or key is required",
    403: "This key may not do that",
    404: "No such resource",
    409: "The resource is not in a state that allows this",
    410: "Expired",
    413: "The body is too large",
    415: "Send application/json or application/x-www-form-urlencoded",
    422: "Some fields are not valid (`fields` names each one)",
    429: "Too many attempts or submissions; try again later (after Retry-After seconds, when given)",
    500: "Something went wrong on our side (`internal_error`); the message says nothing more",
    503: "Briefly unavailable; retry after the Retry-After seconds",
}


# What every route behind the controller authorizer may answer besides its own: 401 and 403 from API
# Gateway and the authorizer before the function runs, 429 from API Gateway's throttling, 400 and
# 413 for a body no route reads (rightsdesk.platform.api_gateway), 500 and 503 (api_errors). A route
# with a body also 415 and 422. Each route documents them (tests/unit/test_api_contracts.py).
ANY_AUTHORIZED_ROUTE = (400, 401, 403, 413, 429, 500, 503)
BODY_ERRORS = (415, 422)


def object_schema(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON object with these properties (name -> JSON Schema)."""
    return {"type": "object", "required": list(required), "properties": {**required, **(optional or {})}}


def responses(
    status: int,
    description: str,
    schema: dict[str, Any] | None,
    *errors: int,
    media: tuple[str, ...] = (JSON,),
    codes: Mapping[int, str] | None = None,
) -> dict[int, Any]:
    """A route's documented answers (powertools `responses=`): its success (as each of `media`; the
    schema applies to JSON) and each error status, with the error codes it carries (`codes`: status
    -> a sentence naming them)."""
    documented: dict[int, Any] = {
        status: {
            "description": description,
            "content": {kind: {"schema": schema} if schema and kind == JSON else {} for kind in media},
        }
    }
    for code in errors:
        text = _ERROR_DESCRIPTIONS[code] + (f". {codes[code]}" if codes and code in codes else "")
        documented[code] = {"description": text, "content": {JSON: {"schema": ERROR_SCHEMA}}}
        if code in (429, 503):
            documented[code]["headers"] = {"Retry-After": RETRY_AFTER_HEADER}
    return documented


RETRY_AFTER_HEADER = {
    "description": "Seconds to wait before trying again (not on every 429)",
    "schema": {"type": "integer", "minimum": 1},
}


# ------------------------------------------------------------------ busy, not broken

# AWS error codes (and transaction cancellation reasons) that mean "slow down and retry": a 503
# with Retry-After, not a 500.
TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "TransactionConflictException",
        "TransactionInProgressException",
        "InternalServerError",
        "ServiceUnavailable",
        "KMS.ThrottlingException",
    }
)
TRANSIENT_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


def is_transient(error: BaseException | None) -> bool:
    """True if `error` (or what caused it) is AWS asking us to slow down, not a fault of ours."""
    for _ in range(4):
        if error is None:
            return False
        code = getattr(error, "cause_response_code", None)  # pynamodb's errors
        response = getattr(error, "response", None)  # botocore's ClientError
        if code is None and isinstance(response, dict):
            code = (response.get("Error") or {}).get("Code")
        if code in TRANSIENT_CODES:
            return True
        reasons = {r.code for r in getattr(error, "cancellation_reasons", None) or () if r is not None}
        if reasons and reasons <= TRANSIENT_REASONS:
            return True
        error = error.__cause__ or error.__context__
    return False
