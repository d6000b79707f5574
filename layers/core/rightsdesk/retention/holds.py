"""Legal holds: a request that must be kept whatever its retention rules say, until released.

Placing a hold removes the TTL (`expires_at`) and the expiry-index keys of the request and of its
audit events and erasure receipt entries, so neither DynamoDB nor the sweeper can act; the rule and due time stay on the item
so that a release can put it back on the index. A release restores the TTL from the rules,
computed from the item's own dates: a request held past its time goes at the next sweep.
The hold's reason lives on the request only; audit events record that a hold was placed, by whom.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pynamodb.exceptions import UpdateError

from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import Conflict, NotFound
from rightsdesk.store import audit
from rightsdesk.store.deletion import conditional_failure
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.receipts import ReceiptEntryItem
from rightsdesk.store.items.requests import LegalHold, RequestItem

if TYPE_CHECKING:
    from rightsdesk.platform.operator_identity import Actor

PLACED = "legal_hold_placed"
RELEASED = "legal_hold_released"


def _load(request_id: str) -> RequestItem:
    """The request as stored, even past its retention time: a hold may still save it."""
    try:
        return RequestItem.get(RequestItem.key(request_id), RequestItem.SK, consistent_read=True)
    except RequestItem.DoesNotExist:
        raise NotFound(f"no request {request_id}") from None


def _events(request: RequestItem) -> list[AuditEvent]:
    return audit.trail(request.pk)


def _receipt_entries(request: RequestItem) -> list[ReceiptEntryItem]:
    """The request's erasure receipt (rightsdesk.connectors.receipts): kept with the skeleton, so held with it."""
    return list(ReceiptEntryItem.query(request.pk, ReceiptEntryItem.sk.startswith(ReceiptEntryItem.SK_PREFIX)))


def place(request_id: str, reason: str, until: datetime | None = None, *, actor: Actor) -> RequestItem:
    """Hold a request and its audit trail. Conflict if it is held already."""
    reason = reason.strip()
    if not reason:
        raise ValueError("a legal hold needs a reason")
    request = _load(request_id)
    now = clock.now()
    try:
        request.update(
            actions=[
                RequestItem.legal_hold.set(LegalHold(reason=reason, placed_at=now, until=until)),
                RequestItem.expires_at.remove(),
                RequestItem.gsi2pk.remove(),
                RequestItem.gsi2sk.remove(),
            ],
            condition=RequestItem.pk.exists() & RequestItem.legal_hold.does_not_exist(),
        )
    except UpdateError as error:
        if conditional_failure(error):
            raise Conflict(f"request {request_id} is already under a legal hold", code="already_held") from None
        raise
    for event in _events(request):
        event.update(actions=[AuditEvent.expires_at.remove()], condition=AuditEvent.pk.exists())
    for entry in _receipt_entries(request):
        entry.update(actions=[ReceiptEntryItem.expires_at.remove()], condition=ReceiptEntryItem.pk.exists())
    placed = audit.event(request.pk, action=PLACED, actor=actor, at=now)
    placed.expires_at = None  # held like the rest of the trail
    placed.save(condition=AuditEvent.sk.does_not_exist())
    return request


def release(request_id: str, *, actor: Actor) -> RequestItem:
    """End a hold: the TTL and the sweeper's schedule come back from the rules."""
    request = _load(request_id)
    if request.legal_hold is None:
        raise Conflict(f"request {request_id} is not under a legal hold", code="not_held")
    now = clock.now()
    actions = [
        RequestItem.legal_hold.remove(),
        RequestItem.expires_at.set(retention.request_expires_at(request.created_at, request.verified_at)),
    ]
    if request.retention_due_at is not None:
        keys = retention.expiry_index_keys(int(request.retention_due_at), request.pk, request.sk)
        actions += [RequestItem.gsi2pk.set(keys["gsi2pk"]), RequestItem.gsi2sk.set(keys["gsi2sk"])]
    try:
        request.update(actions=actions, condition=RequestItem.legal_hold.exists())
    except UpdateError as error:
        if conditional_failure(error):
            raise Conflict(f"request {request_id} is not under a legal hold", code="not_held") from None
        raise
    for event in _events(request):
        expires = retention.expires_at(retention.Rule.SKELETON, event.at)
        event.update(actions=[AuditEvent.expires_at.set(expires)], condition=AuditEvent.pk.exists())
    for entry in _receipt_entries(request):
        expires = retention.expires_at(retention.Rule.SKELETON, entry.recorded_at)
        entry.update(actions=[ReceiptEntryItem.expires_at.set(expires)], condition=ReceiptEntryItem.pk.exists())
    audit.event(request.pk, action=RELEASED, actor=actor, at=now).save(condition=AuditEvent.sk.does_not_exist())
    return request
