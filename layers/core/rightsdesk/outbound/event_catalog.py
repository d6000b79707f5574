"""The webhook event catalog: every event type rightsdesk sends a controller, each with the JSON Schema
(draft 2020-12) of its whole body `{"type", "timestamp", "data"}` (rightsdesk.platform.webhooks.envelope).

One entry per type in CATALOG. A request's events take their data's schema from the builder that
makes the data (rightsdesk.routing.payloads, on rightsdesk.store.request_view); events about no
request have a schema file in event_schemas/, shipped with the layer and read on first use.

Compatibility rule: a published type only changes additively (rightsdesk.outbound.event_compatibility
says what that allows). A breaking change is a new type name, `<type>.v2`, added beside the old one,
whose entry then names its successor (`superseded_by`): both are sent until the old one is retired,
which is announced here first. docs/openapi/events.snapshot.json holds what was published;
tests/unit/test_event_catalog.py fails on a change the rule does not allow.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from rightsdesk.outbound import schema_files
from rightsdesk.platform import webhooks

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _schema_file(name: str) -> Callable[[], dict[str, Any]]:
    return lambda: schema_files.load(name)


def _payloads(builder: str, **options: Any) -> Callable[[], dict[str, Any]]:
    def schema() -> dict[str, Any]:
        from rightsdesk.routing import payloads

        return getattr(payloads, builder)(**options)

    return schema


@dataclass(frozen=True)
class EventType:
    name: str
    summary: str  # when it is sent
    personal_data: bool  # whether `data` can hold the subject's personal data
    data: Callable[[], dict[str, Any]]  # the JSON Schema of `data`
    superseded_by: str | None = None  # a breaking change's new name: this one is deprecated


CATALOG: tuple[EventType, ...] = (
    EventType(
        webhooks.EVENT_FORWARDED,
        "A verified request reaches you. `data.subject` holds the subject's fields until they are purged "
        "(`personal_data_kept_seconds` after delivery); then it is null.",
        personal_data=True,
        data=_payloads("forwarded_schema"),
    ),
    EventType(
        webhooks.EVENT_CANCELLED,
        "The subject cancelled a request you have. No personal data.",
        personal_data=False,
        data=_payloads("notice_schema", deadline=False),
    ),
    EventType(
        webhooks.EVENT_OVERDUE,
        "A deadline notice: 3 days before the due date (`due_in_3_days`), on it (`due_today`) and every "
        "3 days while the request is open after it (`overdue`, `reminder` 1, 2, ...). No personal data.",
        personal_data=False,
        data=_payloads("notice_schema", deadline=True),
    ),
    EventType(
        webhooks.EVENT_BREACH_NOTICE,
        "The operator declared a personal-data breach that concerns you. A copy for your systems: the "
        "notice itself is the email to your privacy contact. No personal data, no recipient.",
        personal_data=False,
        data=_schema_file(webhooks.EVENT_BREACH_NOTICE),
    ),
    EventType(
        webhooks.EVENT_POLICY_UPDATED,
        "A major version of a policy document was published (a copy of the email to your privacy contact).",
        personal_data=False,
        data=_schema_file(webhooks.EVENT_POLICY_UPDATED),
    ),
    EventType(
        webhooks.EVENT_CONSENT_GPC,
        "A visitor's Global Privacy Control signal you forwarded (`POST /v1/controller/gpc`) was recorded "
        "as a withdrawal of sale/share and cross-context advertising; once per visitor. No personal data.",
        personal_data=False,
        data=_schema_file(webhooks.EVENT_CONSENT_GPC),
    ),
    EventType(
        webhooks.EVENT_EXECUTED,
        "An execution you asked for (`POST /v1/controller/requests/{id}/execute`) ended: its signed receipt's "
        "summary per connector (counts, results, legal exceptions), the whole receipt at `receipt.url`. "
        "No personal data.",
        personal_data=False,
        data=_schema_file(webhooks.EVENT_EXECUTED),
    ),
    EventType(
        webhooks.EVENT_TEST,
        "You asked for a test event (`POST /v1/controller/webhook/test`). Nothing to act on.",
        personal_data=False,
        data=_schema_file(webhooks.EVENT_TEST),
    ),
)

BY_NAME: dict[str, EventType] = {event.name: event for event in CATALOG}


def names() -> tuple[str, ...]:
    return tuple(BY_NAME)


@cache
def _envelope(name: str) -> dict[str, Any]:
    event = BY_NAME[name]
    description = event.summary + (
        f" Deprecated: superseded by `{event.superseded_by}`." if event.superseded_by else ""
    )
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:rightsdesk:event:{name}",
        "title": name,
        "description": description,
        "type": "object",
        "required": ["type", "timestamp", "data"],
        "properties": {
            "type": {"const": name, "description": "The event type"},
            "timestamp": {"type": "string", "format": "date-time", "description": "When it happened (UTC)"},
            "data": event.data(),
        },
    }


def envelope_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of a whole `name` event body (a copy: callers may change it)."""
    return copy.deepcopy(_envelope(name))


def schemas() -> dict[str, dict[str, Any]]:
    """Every type's envelope schema, by type: what the compatibility snapshot records."""
    return {name: envelope_schema(name) for name in BY_NAME}


# Standard Webhooks headers, on every event (rightsdesk.platform.webhooks.signed_headers).
HEADERS: tuple[dict[str, Any], ...] = (
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "description": "The event's id, the same on every retry and redelivery: deduplicate on it",
        "schema": {"type": "string", "pattern": "^msg_[0-9a-f]{32}$"},
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "description": "Unix seconds when this attempt was signed; refuse one more than 5 minutes from your clock",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "description": 'Space-separated `v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`, '
        "one per secret that signs (more than one for 24 h after a rotation); the key is the base64-decoded "
        "part of your `whsec_` secret",
        "schema": {"type": "string", "pattern": "^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$"},
    },
)

RECEIVER_ANSWERS: dict[str, Any] = {
    "2XX": {"description": "Received. Only a 2xx is a delivery; answer fast and process later"},
    "410": {"description": "Gone: your endpoint is disabled and deliveries go to your privacy contact by email"},
    "default": {
        "description": "Anything else, or no answer within 10 s: retried after 5 s, 5 min, 30 min, 2 h, 5 h, "
        "10 h, 12 h..., then reported to your privacy contact (docs/delivery.md)"
    },
}


def openapi_webhooks() -> dict[str, Any]:
    """The OpenAPI 3.1 `webhooks` section: one POST per event type, the body its envelope schema."""
    section = {}
    for event in CATALOG:
        operation = {
            "operationId": f"event_{event.name.replace('.', '_')}",
            "summary": event.name,
            "description": event.summary,
            "x-personal-data": event.personal_data,
            "tags": ["Webhook events"],
            "parameters": [dict(header) for header in HEADERS],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": envelope_schema(event.name)}},
            },
            "responses": copy.deepcopy(RECEIVER_ANSWERS),
        }
        if event.superseded_by:
            operation["deprecated"] = True
        section[event.name] = {"post": operation}
    return section
