"""Domain errors. Each carries a stable machine code and the HTTP status a handler should use.

Messages are written for the person who sees them and never contain personal data.
"""

from __future__ import annotations


class RightsdeskError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code:
            self.code = code

    def to_body(self) -> dict[str, dict[str, object]]:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        return {"error": error}


class InvalidInput(RightsdeskError):
    status = 422
    code = "invalid_input"


class IdempotencyKeyReused(InvalidInput):
    """An Idempotency-Key sent again with another body (IETF httpapi Idempotency-Key draft: 422)."""

    code = "idempotency_key_reused"


class UnknownSite(InvalidInput):
    code = "unknown_site"


class SiteUnavailable(InvalidInput):
    """The site's controller is disabled or offboarded: it takes no new requests here."""

    code = "site_unavailable"


class NotFound(RightsdeskError):
    status = 404
    code = "not_found"


class Unauthorized(RightsdeskError):
    status = 401
    code = "unauthorized"


class InvalidCode(RightsdeskError):
    status = 400
    code = "invalid_code"


class CodeExpired(RightsdeskError):
    status = 410
    code = "code_expired"


class TooManyAttempts(RightsdeskError):
    status = 429
    code = "too_many_attempts"


class TooManyRotations(RightsdeskError):
    status = 429
    code = "too_many_rotations"


class Conflict(RightsdeskError):
    status = 409
    code = "conflict"


class IllegalTransition(Conflict):
    code = "illegal_transition"


class RateLimited(RightsdeskError):
    """Too many requests from one caller: retry after `retry_after` seconds (the Retry-After header)."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))
