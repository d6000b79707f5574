"""Read-side listings shared by the operator CLI and the controller API.

Listings go through GSI1 (one partition per controller), never a table scan. Items past their
retention time are treated as absent: DynamoDB's TTL deletes them only within about two days.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import chain, islice

from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import NotFound
from rightsdesk.kernel.status import Status
from rightsdesk.store import audit
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.requests import RequestItem

# The skeleton: what anyone with access to the table may see. Personal fields are never in it.
SKELETON_FIELDS = (
    "request_id",
    "controller_id",
    "site",
    "request_type",
    "relationship",
    "status",
    "created_at",
    "verified_at",
    "due_at",
    "personal_purged_at",
)


def load_request(request_id: str) -> RequestItem:
    """The request, or NotFound if it never existed or its retention time has passed."""
    if not request_id or len(request_id) > 64:
        raise NotFound("no such request")
    request = retention.live_item(RequestItem, RequestItem.key(request_id), RequestItem.SK, consistent_read=True)
    if request is None:
        raise NotFound("no such request")
    return request


def is_visible(item: RequestItem) -> bool:
    """A held item stays readable: a legal hold outlives the retention clock."""
    return retention.is_live(item)


def personal_fields(item: RequestItem) -> dict:
    """The subject's fields; all None once purged or past their purge time (the sweeper may lag
    up to its 10-minute period), unless a legal hold keeps them."""
    gone = item.personal_purged_at is not None or (
        item.legal_hold is None and retention.personal_data_due(item.retention_rule, item.retention_due_at)
    )
    return {field: None if gone else getattr(item, field) for field in RequestItem.PERSONAL_FIELDS}


def audit_trail(request: RequestItem) -> list[AuditEvent]:
    """The request's audit events still within their retention time, oldest first."""
    held = request.legal_hold is not None
    events = [event for event in audit.trail(request.pk) if held or not retention.is_expired(event.expires_at)]
    return sorted(events, key=lambda event: event.at)


def list_controllers() -> list[ControllerItem]:
    """Every registered controller, whatever its state (rightsdesk.routing.registry writes them)."""
    return list(ControllerItem.listing.query(ControllerItem.LISTING_PARTITION))


def controller_requests(
    controller_id: str, status: Status | str | None = None, *, page_size: int | None = None
) -> Iterator[RequestItem]:
    """One controller's live requests, by status, then oldest first (the GSI1 sort key)."""
    condition = None
    if status is not None:
        condition = RequestItem.gsi1sk.startswith(f"{Status(status).value}#")
    items = RequestItem.by_controller.query(
        ControllerItem.key(controller_id),  # intake files a request under its controller's key
        condition,
        # Other item kinds may share a controller's partition later; only requests are listed.
        filter_condition=RequestItem.sk == RequestItem.SK,
        page_size=page_size,
    )
    return (item for item in items if is_visible(item))


def list_requests(
    *,
    controller_id: str | None = None,
    status: Status | str | None = None,
    limit: int | None = None,
) -> Iterator[RequestItem]:
    """Live requests of one controller, or of every registered controller in turn."""
    if controller_id is not None:
        ids: Iterable[str] = [controller_id]
    else:
        ids = (controller.controller_id for controller in list_controllers())
    # Lazy all the way down: a limit stops the reads, and a page is no bigger than the limit.
    found = chain.from_iterable(controller_requests(cid, status, page_size=limit) for cid in ids)
    return islice(found, limit) if limit is not None else found


def skeleton(item: RequestItem) -> dict:
    """The request without its personal fields, JSON-ready."""
    view = {}
    for field in SKELETON_FIELDS:
        value = getattr(item, field)
        view[field] = clock.isoformat(value) if isinstance(value, datetime) else value
    view["flags"] = list(item.flags or [])
    hold = item.legal_hold
    view["legal_hold"] = (
        {
            "reason": hold.reason,
            "placed_at": clock.isoformat(hold.placed_at),
            "until": clock.isoformat(hold.until) if hold.until else None,
        }
        if hold is not None
        else None
    )
    return view
