"""What a controller is told: webhook event data and the context of the emails to its contact.

Only `dsr.request.forwarded` and the `request_forwarded` email carry the subject's personal data,
and only while the request still holds it (it is purged soon after delivery). Cancellations,
deadline notices, tests and failure reports carry ids, types, statuses and dates only.
"""

from __future__ import annotations

from rightsdesk.kernel import clock, retention
from rightsdesk.platform.config import settings
from rightsdesk.store import request_view
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.requests import RequestItem


def request_url(request_id: str) -> str:
    """The request in the controller API (absolute when the public base URL is configured)."""
    return f"{settings().public_base_url}/v1/controller/requests/{request_id}"


def _iso(value) -> str | None:
    return clock.isoformat(value) if value is not None else None


def purge_after_seconds(controller: ControllerItem) -> int:
    override = controller.purge_after_seconds
    if override is not None:
        return int(override)
    return int(retention.keep_for(retention.Rule.DELIVERED_SUBJECT_DATA).total_seconds())


def _links(request: RequestItem) -> dict:
    return {"request": request_url(request.request_id), "status": request_url(request.request_id) + "/status"}


subject = request_view.delivered_subject


def forwarded(request: RequestItem, controller: ControllerItem) -> dict:
    """Everything the controller needs to answer the request."""
    return request_view.view(
        request,
        request_view.WEBHOOK_FORWARDED,
        links=_links(request),
        # rightsdesk deletes the subject's personal fields this long after delivery
        personal_data_kept_seconds=purge_after_seconds(controller),
    )


def _reminder(notice: str) -> tuple[str, int | None]:
    """`overdue_3` -> (`overdue`, 3): the notice a controller reads, and which overdue reminder it is."""
    kind, _, number = notice.rpartition("_")
    if kind == "overdue" and number.isdigit():
        return kind, int(number)
    return notice, None


def notice(request: RequestItem, *, notice: str | None = None) -> dict:
    """A cancellation or a deadline notice: no personal data, whatever the request still holds.
    `notice` is `due_in_3_days`, `due_today` or `overdue` (with `reminder`: 1, 2, ... while it stays
    overdue)."""
    data = request_view.view(request, request_view.WEBHOOK_NOTICE, links=_links(request))
    if notice:
        data["notice"], reminder = _reminder(notice)
        if reminder is not None:
            data["reminder"] = reminder
    return data


def test(controller: ControllerItem, test_id: str) -> dict:
    return {"controller_id": controller.controller_id, "test_id": test_id}


# ------------------------------------------------------------------ their JSON Schemas (the event catalog's)


def forwarded_schema() -> dict:
    return request_view.WEBHOOK_FORWARDED.schema()


def notice_schema(*, deadline: bool) -> dict:
    """A cancellation's data; a deadline notice's (`deadline`) adds which notice and which reminder."""
    schema = request_view.WEBHOOK_NOTICE.schema()
    if deadline:
        from rightsdesk.routing.deadline_watch import DUE_IN_3_DAYS, DUE_TODAY, OVERDUE

        schema["required"].append("notice")
        schema["properties"]["notice"] = {
            "type": "string",
            "enum": [DUE_IN_3_DAYS, DUE_TODAY, OVERDUE],
            "description": "3 days before the due date, on it, or every 3 days while the request is overdue",
        }
        schema["properties"]["reminder"] = {
            "type": "integer",
            "minimum": 1,
            "description": "With `overdue`: 1 in the first 3 days after the due date, then 2, 3, ...",
        }
    return schema


# ------------------------------------------------------------------ emails to the controller's contact


def _mail_base(request: RequestItem, controller: ControllerItem) -> dict:
    return {
        "controller_name": controller.name,
        "request_id": request.request_id,
        "request_type": request.request_type,
        "due_at": _iso(request.due_at),
        "request_url": request_url(request.request_id),
    }


def forwarded_mail(request: RequestItem, controller: ControllerItem) -> dict:
    person = subject(request) or {}
    return {
        **_mail_base(request, controller),
        "relationship": request.relationship,
        "flags": sorted(request.flags or []),
        "purposes": list(request.purposes or []),
        "subject_email": person.get("email"),
        "subject_name": person.get("name"),
        "details": person.get("details"),
        "purge_after_minutes": max(1, purge_after_seconds(controller) // 60),
    }


def failed_mail(request: RequestItem, controller: ControllerItem, *, attempts: int, cause: str) -> dict:
    return {**_mail_base(request, controller), "attempts": attempts, "cause": cause}


def notice_mail(request: RequestItem, controller: ControllerItem, *, notice: str) -> dict:
    """`notice` is `cancelled`, `due_in_3_days`, `due_today` or `overdue_<n>` (mailed as `overdue`)."""
    return {**_mail_base(request, controller), "notice": _reminder(notice)[0]}


def request_mail(request: RequestItem, controller: ControllerItem) -> dict:
    """The facts of a request every mail to the controller's contact about it shows; no personal data."""
    return _mail_base(request, controller)


def webhook_disabled_mail(controller: ControllerItem) -> dict:
    """The endpoint answered 410 Gone: deliveries go to this contact by email until a new one is set."""
    return {
        "controller_name": controller.name,
        "controller_id": controller.controller_id,
        "requests_url": f"{settings().public_base_url}/v1/controller/requests",
    }
