"""The subject's copy of their data, for access and portability requests to the operator itself.

Nothing is stored: the export is read from the table each time it is opened (rightsdesk.own_data.subject_data),
for EXPORT_DAYS after the request was completed, and only with the request's status token. So no
copy of the data outlives the window, and an erasure in between leaves nothing to download.

Two forms of the same document: JSON (portability: machine-readable, described by
schemas/export.schema.json, which ships with the layer) and a readable HTML page in the subject's
language. What the connectors found in the operator's stores comes as sections given to
`document` (one per source; rightsdesk.own_data.export_sections): in the JSON one `sources` entry
each, with a schema inferred from its records; on the page one table each; and, where its records
are flat, one CSV file each (`csv_file`, format=csv&section=<connector id>). A request made by one subject never shows another's data: everything is found by the
keyed hash of the address the subject proved they control.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from rightsdesk.audience import consents, contacts
from rightsdesk.intake import submissions
from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import NotFound, RightsdeskError
from rightsdesk.kernel.rights import RequestType
from rightsdesk.kernel.status import Status
from rightsdesk.own_data.own_requests import EXPORT_DAYS, is_internal
from rightsdesk.platform.config import SUPPORTED_LOCALES
from rightsdesk.render import TEMPLATES_DIR, i18n, web
from rightsdesk.routing import controller_lookup
from rightsdesk.store import queries, request_view
from rightsdesk.store.items.requests import RequestItem

if TYPE_CHECKING:
    from jinja2 import Environment

KINDS = (RequestType.ACCESS.value, RequestType.PORTABILITY.value)
PATH = "/v1/requests/{request_id}/export"
SCHEMA_FILE = Path(__file__).parent / "schemas" / "export.schema.json"
SCHEMA_ID = "urn:rightsdesk:schema:export:1"
FORMATS = ("json", "html", "csv")
PAGES_DIR = TEMPLATES_DIR / "operator" / "pages"


class NotReady(RightsdeskError):
    status = 409
    code = "export_not_ready"


class Expired(RightsdeskError):
    status = 410
    code = "export_expired"


class NotTabular(RightsdeskError):
    status = 409
    code = "section_not_tabular"


# ------------------------------------------------------------------ who may see it, and until when


def available_until(request: RequestItem) -> datetime | None:
    """Rule.EXPORT's period after the request was completed (its audit trail says when), else None."""
    if request.request_type not in KINDS or request.status != Status.COMPLETED.value:
        return None
    if not is_internal(request.controller_id):
        return None  # other controllers answer their own requests: rightsdesk only forwarded them
    completed = [e.at for e in queries.audit_trail(request) if e.to_status == Status.COMPLETED.value]
    return max(completed) + retention.keep_for(retention.Rule.EXPORT) if completed else None


def authorize(request_id: str, token: str | None, *, source: str | None = None) -> tuple[RequestItem, datetime]:
    """The request and the end of its export window, for the holder of its status token. `source`,
    the caller's address, is limited as on the status routes (rightsdesk.intake.guard)."""
    request = submissions.authorize(request_id, token, source=source)
    if request.request_type not in KINDS or not is_internal(request.controller_id):
        raise NotFound("this request has no export", code="no_export")
    until = available_until(request)
    if until is None:
        raise NotReady("the export is ready once the request is completed")
    if clock.now() >= until:
        raise Expired(f"the export was available for {EXPORT_DAYS} days after the request was completed")
    return request, until


def link(request: RequestItem, token: str | None, fmt: str = "html") -> str | None:
    """A link to the export while it is available (for the status page), else None."""
    until = available_until(request)
    if not token or until is None or clock.now() >= until:
        return None
    return PATH.format(request_id=quote(request.request_id, safe="")) + "?" + urlencode({"format": fmt, "token": token})


# ------------------------------------------------------------------ the document


def _iso(value: datetime | None) -> str | None:
    return clock.isoformat(value) if value else None


def document(request: RequestItem, until: datetime, sections: Sequence[Mapping[str, Any]] | None = None) -> dict:
    """Everything held about the request's subject, as schemas/export.schema.json describes it;
    `sections` are what the connectors exported from the operator's stores, one per source."""
    from rightsdesk.own_data import (
        export_sections,
        subject_data,  # the holdings: only for the export itself, not the status page's link
    )

    held = subject_data.gather(request.subject_hash)
    controller = controller_lookup.get_controller(request.controller_id)
    personal = queries.personal_fields(request)
    return {
        "schema": SCHEMA_ID,
        "generated_at": clock.isoformat(clock.now()),
        "request_id": request.request_id,
        "available_until": clock.isoformat(until),
        "controller": {"name": controller.name if controller else None, "site": request.site},
        "subject": {"email": personal["email"]},
        "contact": contacts.view(held.contact) if held.contact is not None else None,
        "subscriptions": [
            {"list": m.sk.removeprefix("LIST#"), "joined_at": _iso(m.joined_at), "locale": m.locale}
            for m in held.memberships
        ],
        "consents": [consents.view(item) for item in held.consents],
        "requests": [_request(item) for item in held.requests],
        "notices": [
            {
                "kind": "breach",
                "incident_id": incident.incident_id,
                "detected_at": _iso(incident.detected_at),
                "summary": incident.summary,
                "email": notice.email,
                "status": notice.status,
                "sent_at": _iso(notice.sent_at),
            }
            for incident, notice in held.notices
        ],
        "suppression": (
            {"reason": held.suppression.reason, "since": _iso(held.suppression.first_at)}
            if held.suppression is not None
            else None
        ),
        "contact_history": [
            {"at": _iso(event.at), "action": event.action, "actor": event.actor, "detail": event.cause}
            for event in held.history
        ],
        "sources": [export_sections.source(section) for section in sections or ()],
        # The words for every key above (types, statuses, purposes, lists), in the subject's language.
        "labels": {"locale": i18n.normalize(request.locale), **i18n.labels(i18n.normalize(request.locale))},
    }


def connector_sections(request_id: str) -> list[dict]:
    """What the connectors exported for the request (rightsdesk.connectors.export_store), one
    section per source, for `document`."""
    from rightsdesk.connectors import export_store  # read only when an export is opened

    return export_store.sections(request_id)


def _request(item: RequestItem) -> dict:
    return request_view.view(item, request_view.EXPORT)


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


# ------------------------------------------------------------------ the page


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return web.page_environment(PAGES_DIR, language_names=i18n.LANGUAGE_NAMES)


def csv_file(doc: dict, section_id: str) -> tuple[str, str]:
    """(a file name, the CSV text) of one source's records. NotFound for a source the document does
    not hold; NotTabular for one whose records nest (its JSON holds them)."""
    from rightsdesk.own_data import export_sections

    for found in doc.get("sources") or ():
        if found["connector_id"] == section_id:
            if not found["csv"]:
                raise NotTabular("this source's records nest objects or lists: download the JSON file")
            return f"rightsdesk-export-{doc['request_id']}-{section_id}.csv", export_sections.csv_text(found["records"])
    raise NotFound("the export has no such section", code="no_section")


def page(doc: dict, locale: str, token: str) -> str:
    from rightsdesk.own_data import export_sections

    locale = i18n.normalize(locale)
    here = PATH.format(request_id=quote(doc["request_id"], safe=""))
    links = [
        {
            "code": code,
            "name": i18n.LANGUAGE_NAMES[code],
            "current": code == locale,
            "href": here + "?" + urlencode({"format": "html", "token": token, "lang": code}),
        }
        for code in SUPPORTED_LOCALES
    ]
    return (
        _environment()
        .get_template("export.html")
        .render(
            doc=doc,
            locale=locale,
            language_links=links,
            json_url=here + "?" + urlencode({"format": "json", "token": token}),
            sources=[
                {
                    **found,
                    "table": export_sections.table(found["records"]),
                    "csv_url": here
                    + "?"
                    + urlencode({"format": "csv", "section": found["connector_id"], "token": token})
                    if found["csv"]
                    else None,
                }
                for found in doc.get("sources") or ()
            ],
            when=lambda iso: clock.parse_iso(iso) if iso else None,
        )
    )


def unavailable_page(reason: str, locale: str) -> str:
    """What a browser shows for an export not ready yet (`export_not_ready`) or past its window."""
    locale = i18n.normalize(locale)
    return (
        _environment()
        .get_template("export_unavailable.html")
        .render(
            reason=reason,
            days=EXPORT_DAYS,
            locale=locale,
            language_links=[],
        )
    )
