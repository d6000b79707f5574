"""A request as each audience sees it: the subject's status page, the controller API (a listing's
summary, one request's detail), the subject's export and the webhook payloads.

Every field is defined once, in FIELDS (what it is called, how it is read and formatted); an
audience is the keys it sees, in the order its answers have always had them. Only where an
audience is promised something else under the same key does it say so (`own`): the controller API
shows the subject's fields it still holds and leaves empty ones out, the webhook's JSON Schema names
all three. Keys that need more than the request (a webhook's links, the controller's purge period)
are `given` by the caller.

Personal data appears only under `subject` and `personal`, and only while the request holds it
(rightsdesk.store.queries.personal_fields); the status page's keys never include either.

Each key's JSON Schema sits beside its reader (SCHEMAS; an audience's `own` and `given` keys bring
theirs): `Audience.schema()` is what the OpenAPI documents and the webhook event catalog publish, and
tests validate every view against it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rightsdesk.kernel import clock
from rightsdesk.kernel.rights import PURPOSES, RELATIONSHIPS, REQUEST_TYPES
from rightsdesk.kernel.status import Status
from rightsdesk.store import queries
from rightsdesk.store.items.requests import RequestItem

Field = Callable[[RequestItem], Any]


def _iso(value: datetime | None) -> str | None:
    return clock.isoformat(value) if value is not None else None


def timeline(request: RequestItem) -> list[dict[str, str]]:
    """Each status the request reached and when, oldest first, from its audit trail."""
    return [
        {"at": clock.isoformat(event.at), "status": event.to_status}
        for event in queries.audit_trail(request)
        if event.to_status
    ]


def held_subject(request: RequestItem) -> dict[str, str] | None:
    """The subject's fields the request still holds, empty ones left out; None once purged."""
    return {name: value for name, value in queries.personal_fields(request).items() if value} or None


def delivered_subject(request: RequestItem) -> dict[str, str | None] | None:
    """The subject as a controller receives them (email, name, details), or None once purged."""
    if request.personal_purged_at is not None or not request.email:
        return None
    return {"email": request.email, "name": request.name, "details": request.details}


FIELDS: dict[str, Field] = {
    "request_id": lambda r: r.request_id,
    "type": lambda r: r.request_type,
    "site": lambda r: r.site,
    "relationship": lambda r: r.relationship,
    "status": lambda r: r.status,
    "locale": lambda r: r.locale,
    "purposes": lambda r: list(r.purposes or []),
    # stored sorted (rightsdesk.intake.subjects.flags_for); sorted again so no reader depends on it
    "flags": lambda r: sorted(r.flags or []),
    "created_at": lambda r: _iso(r.created_at),
    "verified_at": lambda r: _iso(r.verified_at),
    "due_at": lambda r: _iso(r.due_at),
    "personal_data_purged_at": lambda r: _iso(r.personal_purged_at),
    "timeline": timeline,
    "subject": held_subject,
    "personal": queries.personal_fields,
}


def _time(description: str, *, nullable: bool = True) -> dict[str, Any]:
    return {"type": ["string", "null"] if nullable else "string", "format": "date-time", "description": description}


def _text(description: str) -> dict[str, Any]:
    return {"type": ["string", "null"], "description": description}


TIMELINE_ENTRY: dict[str, Any] = {
    "type": "object",
    "required": ["at", "status"],
    "properties": {
        "at": _time("When", nullable=False),
        "status": {"type": "string", "enum": [s.value for s in Status]},
    },
}

# The JSON Schema of each FIELDS key, as FIELDS reads it (ISO 8601 UTC times, null when not yet or no longer).
SCHEMAS: dict[str, dict[str, Any]] = {
    "request_id": {"type": "string", "description": "The request's id (`dsr_…`)"},
    "type": {"type": "string", "enum": list(REQUEST_TYPES), "description": "What the subject asks for"},
    "site": {"type": "string", "description": "The site key the request was made about"},
    "relationship": {"type": "string", "enum": list(RELATIONSHIPS), "description": "Who asks: the subject or for them"},
    "status": {"type": "string", "enum": [s.value for s in Status], "description": "Where the request stands"},
    "locale": {"type": "string", "description": "The subject's language (en, de, sl)"},
    "purposes": {
        "type": "array",
        "items": {"type": "string", "enum": list(PURPOSES)},
        "description": "The purposes a consent withdrawal names; empty for other types",
    },
    "flags": {
        "type": "array",
        "items": {"type": "string"},
        "description": "`excessive` (a second or later request this calendar year), `guardian` (for a minor)",
    },
    "created_at": _time("When it was submitted", nullable=False),
    "verified_at": _time("When the subject proved their address"),
    "due_at": _time("When the answer is due"),
    "personal_data_purged_at": _time("When the subject's personal fields were deleted; null while held"),
    "timeline": {"type": "array", "items": TIMELINE_ENTRY, "description": "Each status reached, oldest first"},
    "subject": {
        "type": ["object", "null"],
        "properties": {"email": {"type": "string"}, "name": {"type": "string"}, "details": {"type": "string"}},
        "description": "The subject's fields still held (empty ones left out); null once purged",
    },
    "personal": {
        "type": "object",
        "required": ["email", "name", "details"],
        "properties": {"email": _text("The address"), "name": _text("The name"), "details": _text("The details")},
        "description": "The subject's fields; null once purged",
    },
}


@dataclass(frozen=True)
class Audience:
    """The keys one audience sees, in order; `own` reads a key this audience's way instead of
    FIELDS'; `given` keys come from the caller (view(..., **given)); `schemas` describes the own and
    given keys (the others are SCHEMAS')."""

    keys: tuple[str, ...]
    own: Mapping[str, Field] = field(default_factory=dict)
    given: frozenset[str] = frozenset()
    schemas: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    def then(
        self,
        *keys: str,
        own: Mapping[str, Field] | None = None,
        given: tuple[str, ...] = (),
        schemas: Mapping[str, dict[str, Any]] | None = None,
    ) -> Audience:
        """This audience's keys followed by more."""
        return Audience(
            self.keys + keys,
            {**self.own, **(own or {})},
            self.given | frozenset(given),
            {**self.schemas, **(schemas or {})},
        )

    def schema(self, *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
        """The JSON Schema of this audience's view: every key is always there, except `optional` ones
        (keys a published contract added later, which earlier documents lack)."""
        return {
            "type": "object",
            "required": [key for key in self.keys if key not in optional],
            "properties": {key: self.schemas.get(key) or SCHEMAS[key] for key in self.keys},
        }


# The subject's status page and GET /v1/requests/{id}: progress only, no personal data.
SUBJECT_STATUS = Audience(("request_id", "type", "status", "created_at", "verified_at", "due_at", "timeline"))
# The controller API: a listing's entries, and one request with the subject while it is held.
CONTROLLER_SUMMARY = Audience(
    (
        "request_id",
        "site",
        "type",
        "relationship",
        "status",
        "flags",
        "created_at",
        "verified_at",
        "due_at",
        "personal_data_purged_at",
    )
)
CONTROLLER_DETAIL = CONTROLLER_SUMMARY.then("locale", "purposes", "subject", "timeline")
# Each of the subject's requests in their export (schemas/export.schema.json).
EXPORT = Audience(
    (
        "request_id",
        "type",
        "status",
        "site",
        "relationship",
        "locale",
        "purposes",
        "created_at",
        "verified_at",
        "due_at",
        "personal",
        "timeline",
    )
)
# Webhook event data: notices carry no personal data; dsr.request.forwarded carries the subject.
LINKS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["request", "status"],
    "properties": {
        "request": {"type": "string", "description": "The request in the controller API (GET)"},
        "status": {"type": "string", "description": "Where to report progress (POST)"},
    },
}
WEBHOOK_NOTICE = Audience(
    ("request_id", "type", "status", "due_at", "links"), given=frozenset({"links"}), schemas={"links": LINKS_SCHEMA}
)
WEBHOOK_FORWARDED = WEBHOOK_NOTICE.then(
    "relationship",
    "flags",
    "purposes",
    "locale",
    "created_at",
    "verified_at",
    "subject",
    "personal_data_kept_seconds",
    own={"subject": delivered_subject},
    given=("personal_data_kept_seconds",),
    schemas={
        "subject": {
            "type": ["object", "null"],
            "required": ["email", "name", "details"],
            "properties": {"email": {"type": "string"}, "name": _text("The name"), "details": _text("The details")},
            "description": "The subject's fields; null once purged",
        },
        "personal_data_kept_seconds": {
            "type": "integer",
            "minimum": 0,
            "description": "rightsdesk deletes the subject's fields this long after delivery",
        },
    },
)


def view(request: RequestItem, audience: Audience, **given: Any) -> dict[str, Any]:
    """The request as `audience` sees it; `given` supplies exactly the audience's given keys."""
    if set(given) != audience.given:
        raise TypeError(f"this view needs {sorted(audience.given)} given, got {sorted(given)}")
    return {
        key: given[key] if key in audience.given else audience.own.get(key, FIELDS[key])(request)
        for key in audience.keys
    }
