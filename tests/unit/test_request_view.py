"""A request as each audience sees it (the subject's status page, the controller API, the export, the
webhook payloads), pinned byte for byte: the views are derived from one definition
(rightsdesk.store.request_view), and that must not change a single byte any of them answers.

The table covers the shapes that differ: a request with every field, one with an address but no
name (the controller API leaves empty fields out, the webhook keeps them as null), one whose
personal fields were purged, and one not verified yet (no dates to show)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from moto import mock_aws

from rightsdesk.intake import submissions
from rightsdesk.own_data import exports
from rightsdesk.routing import controller_requests, payloads
from rightsdesk.store import audit
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.requests import RequestItem
from tests.support.aws import moto_cloud


def _at(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 11, day, hour, 0, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def cloud():
    from rightsdesk.platform import aws_clients, config

    with pytest.MonkeyPatch.context() as patch, mock_aws():
        yield moto_cloud(patch, "rightsdesk-request-view", env={"PUBLIC_BASE_URL": "https://privacy.example.com"})
        aws_clients.forget_clients()
    config.reload()


CASES = {
    "complete": dict(
        status="acknowledged",
        email="ana@example.org",
        name="Ana Novak",
        details="chat on 3 May",
        flags=["excessive", "guardian"],
        purposes=["analytics", "marketing"],
        relationship="guardian",
        locale="sl",
        verified_at=_at(2),
        due_at=_at(30, 23),
        timeline=[
            (_at(1), "identity_unverified"),
            (_at(2), "verified"),
            (_at(2, 10), "forwarded"),
            (_at(3), "acknowledged"),
        ],
    ),
    "no_name": dict(
        status="forwarded",
        email="bo@example.org",
        name=None,
        details="",
        verified_at=_at(4),
        due_at=_at(30, 23),
        timeline=[(_at(4), "verified")],
    ),
    "purged": dict(
        status="delivered",
        email=None,
        name=None,
        details=None,
        personal_purged_at=_at(5, 11),
        verified_at=_at(5),
        due_at=_at(30, 23),
        flags=["excessive"],
    ),
    "unverified": dict(
        status="identity_unverified",
        email="cy@example.org",
        name="Cy",
        details=None,
        timeline=[(_at(6), "identity_unverified")],
    ),
}


def _saved(case: str) -> RequestItem:
    fields = dict(CASES[case])
    timeline = fields.pop("timeline", [])
    request_id = f"req_view_{case}"
    request = RequestItem(
        RequestItem.key(request_id),
        RequestItem.SK,
        request_id=request_id,
        controller_id="ctl_view",
        site="view.example",
        request_type="access",
        created_at=_at(1),
        **fields,
    )
    request.save()
    for at, status in timeline:
        audit.event(request.pk, action="transition", actor="test", at=at, to_status=status).save()
        # an event without a status change stays out of every timeline
        audit.event(request.pk, action="note", actor="test", at=at).save()
    return request


CONTROLLER = ControllerItem(
    "CTL#ctl_view",
    "CONTROLLER",
    controller_id="ctl_view",
    name="View Ltd",
    site_key="view.example",
    contact_email="dpo@view.example",
    delivery="webhook",
)

VIEWS = {
    "subject_status": submissions.status_view,
    "controller_summary": controller_requests.summary,
    "controller_detail": controller_requests.detail,
    "export_request": exports._request,
    "webhook_forwarded": lambda request: payloads.forwarded(request, CONTROLLER),
    "webhook_notice": lambda request: payloads.notice(request, notice="overdue_2"),
}

# Captured from the four views as they were written before they shared one definition.
GOLDEN = {
    (
        "controller_detail",
        "complete",
    ): '{"request_id": "req_view_complete", "site": "view.example", "type": "access", "relationship": "guardian", "status": "acknowledged", "flags": ["excessive", "guardian"], "created_at": "2026-11-01T09:00:00Z", "verified_at": "2026-11-02T09:00:00Z", "due_at": "2026-11-30T23:00:00Z", "personal_data_purged_at": null, "locale": "sl", "purposes": ["analytics", "marketing"], "subject": {"email": "ana@example.org", "name": "Ana Novak", "details": "chat on 3 May"}, "timeline": [{"at": "2026-11-01T09:00:00Z", "status": "identity_unverified"}, {"at": "2026-11-02T09:00:00Z", "status": "verified"}, {"at": "2026-11-02T10:00:00Z", "status": "forwarded"}, {"at": "2026-11-03T09:00:00Z", "status": "acknowledged"}]}',
    (
        "controller_detail",
        "no_name",
    ): '{"request_id": "req_view_no_name", "site": "view.example", "type": "access", "relationship": "self", "status": "forwarded", "flags": [], "created_at": "2026-11-01T09:00:00Z", "verified_at": "2026-11-04T09:00:00Z", "due_at": "2026-11-30T23:00:00Z", "personal_data_purged_at": null, "locale": "en", "purposes": [], "subject": {"email": "bo@example.org"}, "timeline": [{"at": "2026-11-04T09:00:00Z", "status": "verified"}]}',
    (
        "controller_detail",
        "purged",
    ): '{"request_id": "req_view_purged", "site": "view.example", "type": "access", "relationship": "self", "status": "delivered", "flags": ["excessive"], "created_at": "2026-11-01T09:00:00Z", "verified_at": "2026-11-05T09:00:00Z", "due_at": "2026-11-30T23:00:00Z", "personal_data_purged_at": "2026-11-05T11:00:00Z", "locale": "en", "purposes": [], "subject": null, "timeline": []}',
    (
        "controller_detail",
        "unverified",
    ): '{"request_id": "req_view_unverified", "site": "view.example", "type": "access", "relationship": "self", "status": "identity_unverified", "flags": [], "created_at": "2026-11-01T09:00:00Z", "verified_at": null, "due_at": null, "personal_data_purged_at": null, "locale": "en", "purposes": [], "subject": {"email": "cy@example.org", "name": "Cy"}, "timeline": [{"at": "2026-11-06T09:00:00Z", "status": "identity_unverified"}]}',
    (
        "controller_summary",
        "complete",
    ): '{"request_id": "req_view_complete", "site": "view.example", "type": "access", "relationship": "guardian", "status": "acknowledged", "flags": ["excessive", "guardian"], "created_at": "2026-11-01T09:00:00Z", "verified_at": "2026-11-02T09:00:00Z", "due_at": "2026-11-30T23:00:00Z", "personal_data_purged_at": null}',
    (
        "controller_summary",
        "no_name",
    ): '{"request_id": "req_view_no_name", "site": "view.example", "type": "access", "relationship": "self", "status": "forwarded", "flags": [], "created_at": "2026-11-01T09:00:00Z", "verified_at": "2026-11-04T09:00:00Z", "due_at": "2026-11-30T23:00:00Z", "personal_data_purged_at": null}',
    (
        "controller_summary",
        "purged",
    ): '{"request_id": "req_view_purged", "site": "view.example", "type": "access", "relationship": "self", "status": "delivered", "flags": ["excessive"], "created_at": "2026-11-01T09:00:00Z", "verified_at": "2026-11-05T09:00:00Z", "due_at": "2026-11-30T23:00:00Z", "personal_data_purged_at": "2026-11-05T11:00:00Z"}',
    (
        "controller_summary",
        "unverified",
    ): '{"request_id": "req_view_unverified", "site": "view.example", "type": "access", "relationship": "self", "status": "identity_unverified", "flags": [], "created_at": "2026-11-01T09:00:00Z", "verified_at": null, "due_at": null, "personal_data_purged_at": null}',
    (
        "export_request",
        "complete",
    ): '{"request_id": "req_view_complete", "type": "access", "status": "acknowledged", "site": "view.example", "relationship": "guardian", "locale": "sl", "purposes": ["analytics", "marketing"], "created_at": "2026-11-01T09:00:00Z", "verified_at": "2026-11-02T09:00:00Z", "due_at": "2026-11-30T23:00:00Z", "personal": {"email": "ana@example.org", "name": "Ana Novak", "details": "chat on 3 May"}, "timeline": [{"at": "2026-11-01T09:00:00Z", "status": "identity_unverified"}, {"at": "2026-11-02T09:00:00Z", "status": "verified"}, {"at": "2026-11-02T10:00:00Z", "status": "forwarded"}, {"at": "2026-11-03T09:00:00Z", "status": "acknowledged"}]}',
    (
        "export_request",
        "no_name",
    ): '{"request_id": "req_view_no_name", "type": "access", "status": "forwarded", "site": "view.example", "relationship": "self", "locale": "en", "purposes": [], "created_at": "2026-11-01T09:00:00Z", "verified_at": "2026-11-04T09:00:00Z", "due_at": "2026-11-30T23:00:00Z", "personal": {"email": "bo@example.org", "name": null, "details": ""}, "timeline": [{"at": "2026-11-04T09:00:00Z", "status": "verified"}]}',
    (
        "export_request",
        "purged",
    ): '{"request_id": "req_view_purged", "type": "access", "status": "delivered", "site": "view.example", "relationship": "self", "locale": "en", "purposes": [], "created_at": "2026-11-01T09:00:00Z", "verified_at": "2026-11-05T09:00:00Z", "due_at": "2026-11-30T23:00:00Z", "personal": {"email": null, "name": null, "details": null}, "timeline": []}',
    (
        "export_request",
        "unverified",
    ): '{"request_id": "req_view_unverified", "type": "access", "status": "identity_unverified", "site": "view.example", "relationship": "self", "locale": "en", "purposes": [], "created_at": "2026-11-01T09:00:00Z", "verified_at": null, "due_at": null, "personal": {"email": "cy@example.org", "name": "Cy", "details": null}, "timeline": [{"at": "2026-11-06T09:00:00Z", "status": "identity_unverified"}]}',
    (
        "subject_status",
        "complete",
    ): '{"request_id": "req_view_complete", "type": "access", "status": "acknowledged", "created_at": "2026-11-01T09:00:00Z", "verified_at": "2026-11-02T09:00:00Z", "due_at": "2026-11-30T23:00:00Z", "timeline": [{"at": "2026-11-01T09:00:00Z", "status": "identity_unverified"}, {"at": "2026-11-02T09:00:00Z", "status": "verified"}, {"at": "2026-11-02T10:00:00Z", "status": "forwarded"}, {"at": "2026-11-03T09:00:00Z", "status": "acknowledged"}]}',
    (
        "subject_status",
        "no_name",
    ): '{"request_id": "req_view_no_name", "type": "access", "status": "forwarded", "created_at": "2026-11-01T09:00:00Z", "verified_at": "2026-11-04T09:00:00Z", "due_at": "2026-11-30T23:00:00Z", "timeline": [{"at": "2026-11-04T09:00:00Z", "status": "verified"}]}',
    (
        "subject_status",
        "purged",
    ): '{"request_id": "req_view_purged", "type": "access", "status": "delivered", "created_at": "2026-11-01T09:00:00Z", "verified_at": "2026-11-05T09:00:00Z", "due_at": "2026-11-30T23:00:00Z", "timeline": []}',
    (
        "subject_status",
        "unverified",
    ): '{"request_id": "req_view_unverified", "type": "access", "status": "identity_unverified", "created_at": "2026-11-01T09:00:00Z", "verified_at": null, "due_at": null, "timeline": [{"at": "2026-11-06T09:00:00Z", "status": "identity_unverified"}]}',
    (
        "webhook_forwarded",
        "complete",
    ): '{"request_id": "req_view_complete", "type": "access", "status": "acknowledged", "due_at": "2026-11-30T23:00:00Z", "links": {"request": "https://privacy.example.com/v1/controller/requests/req_view_complete", "status": "https://privacy.example.com/v1/controller/requests/req_view_complete/status"}, "relationship": "guardian", "flags": ["excessive", "guardian"], "purposes": ["analytics", "marketing"], "locale": "sl", "created_at": "2026-11-01T09:00:00Z", "verified_at": "2026-11-02T09:00:00Z", "subject": {"email": "ana@example.org", "name": "Ana Novak", "details": "chat on 3 May"}, "personal_data_kept_seconds": 3600}',
    (
        "webhook_forwarded",
        "no_name",
    ): '{"request_id": "req_view_no_name", "type": "access", "status": "forwarded", "due_at": "2026-11-30T23:00:00Z", "links": {"request": "https://privacy.example.com/v1/controller/requests/req_view_no_name", "status": "https://privacy.example.com/v1/controller/requests/req_view_no_name/status"}, "relationship": "self", "flags": [], "purposes": [], "locale": "en", "created_at": "2026-11-01T09:00:00Z", "verified_at": "2026-11-04T09:00:00Z", "subject": {"email": "bo@example.org", "name": null, "details": ""}, "personal_data_kept_seconds": 3600}',
    (
        "webhook_forwarded",
        "purged",
    ): '{"request_id": "req_view_purged", "type": "access", "status": "delivered", "due_at": "2026-11-30T23:00:00Z", "links": {"request": "https://privacy.example.com/v1/controller/requests/req_view_purged", "status": "https://privacy.example.com/v1/controller/requests/req_view_purged/status"}, "relationship": "self", "flags": ["excessive"], "purposes": [], "locale": "en", "created_at": "2026-11-01T09:00:00Z", "verified_at": "2026-11-05T09:00:00Z", "subject": null, "personal_data_kept_seconds": 3600}',
    (
        "webhook_forwarded",
        "unverified",
    ): '{"request_id": "req_view_unverified", "type": "access", "status": "identity_unverified", "due_at": null, "links": {"request": "https://privacy.example.com/v1/controller/requests/req_view_unverified", "status": "https://privacy.example.com/v1/controller/requests/req_view_unverified/status"}, "relationship": "self", "flags": [], "purposes": [], "locale": "en", "created_at": "2026-11-01T09:00:00Z", "verified_at": null, "subject": {"email": "cy@example.org", "name": "Cy", "details": null}, "personal_data_kept_seconds": 3600}',
    (
        "webhook_notice",
        "complete",
    ): '{"request_id": "req_view_complete", "type": "access", "status": "acknowledged", "due_at": "2026-11-30T23:00:00Z", "links": {"request": "https://privacy.example.com/v1/controller/requests/req_view_complete", "status": "https://privacy.example.com/v1/controller/requests/req_view_complete/status"}, "notice": "overdue", "reminder": 2}',
    (
        "webhook_notice",
        "no_name",
    ): '{"request_id": "req_view_no_name", "type": "access", "status": "forwarded", "due_at": "2026-11-30T23:00:00Z", "links": {"request": "https://privacy.example.com/v1/controller/requests/req_view_no_name", "status": "https://privacy.example.com/v1/controller/requests/req_view_no_name/status"}, "notice": "overdue", "reminder": 2}',
    (
        "webhook_notice",
        "purged",
    ): '{"request_id": "req_view_purged", "type": "access", "status": "delivered", "due_at": "2026-11-30T23:00:00Z", "links": {"request": "https://privacy.example.com/v1/controller/requests/req_view_purged", "status": "https://privacy.example.com/v1/controller/requests/req_view_purged/status"}, "notice": "overdue", "reminder": 2}',
    (
        "webhook_notice",
        "unverified",
    ): '{"request_id": "req_view_unverified", "type": "access", "status": "identity_unverified", "due_at": null, "links": {"request": "https://privacy.example.com/v1/controller/requests/req_view_unverified", "status": "https://privacy.example.com/v1/controller/requests/req_view_unverified/status"}, "notice": "overdue", "reminder": 2}',
}


@pytest.fixture(scope="module")
def saved(cloud) -> dict[str, RequestItem]:
    return {case: _saved(case) for case in CASES}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("view", sorted(VIEWS))
def test_every_audience_sees_exactly_the_bytes_it_saw_before(saved, case, view):
    answer = json.dumps(VIEWS[view](saved[case]))
    assert answer == GOLDEN[view, case]
