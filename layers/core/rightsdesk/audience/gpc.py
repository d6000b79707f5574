"""Global Privacy Control signals in the consent ledger: what a `Sec-GPC: 1` on a request, or a
site forwarding a visitor's signal, records.

Both record a withdrawal of the GPC purposes (rightsdesk.kernel.gpc.PURPOSES: sale/share and
cross-context advertising) with source `gpc`, through the ledger's `withdraw_by_signal`: an earlier
explicit grant is overridden (GPC is a valid opt-out) but named in the change and audited, never
silently. A signal never erases anything.

- On a request (`record_for_request`): for the subject's address hash, and only once the address
  is verified. The flag is stored with the submission; the dispatcher records it when it routes
  the verified request. An unverified address proves nothing: a withdrawal recorded at submission
  would be attributable to whoever's address was typed in.
- From a controller (`forward`): for the site's own pseudonymous visitor id, stored only as a keyed
  hash of (controller, visitor id), so the same id at two controllers is two unrelated signals and
  no controller can reach another's. Once per controller and visitor: a repeat answers the first
  record. The controller's webhook gets `consent.gpc` through the DeliveryQueue (ids only); the
  dispatcher builds the event from the signal item (`webhook_data`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from pynamodb.exceptions import PutError

from rightsdesk.audience import consents
from rightsdesk.kernel import clock, gpc, retention
from rightsdesk.kernel.errors import InvalidInput, NotFound
from rightsdesk.platform import hashing, webhooks
from rightsdesk.store import outbox
from rightsdesk.store.deletion import conditional_failure
from rightsdesk.store.items.audience import ContactItem, GpcSignalItem
from rightsdesk.store.items.requests import RequestItem

# A site's pseudonymous visitor id: what a cookie or a first-party id looks like, never an address.
VISITOR_ID = re.compile(r"^[A-Za-z0-9._~:-]{8,128}$")
VISITOR_ID_RULE = "8 to 128 characters: letters, digits and . _ ~ : -"
# Keys of the keyed hashes (rightsdesk.platform.hashing): one per kind of secret hashed.
_VISITOR_KEY = "gpc_visitor"
SIGNAL_PREFIX = "gpc_"
DELIVERED, DISABLED, FAILED = "delivered", "disabled", "failed"


@dataclass(frozen=True)
class Recorded:
    withdrawn: list[str]  # purposes withdrawn now (empty: withdrawn before)
    conflicts: dict[str, str]  # purpose -> the explicit grant it overrode


# ------------------------------------------------------------------ on a request


def record_for_request(request: RequestItem, *, at: datetime | None = None) -> Recorded | None:
    """The withdrawal a verified request's `Sec-GPC: 1` stands for; None if it carries no signal or
    is not verified. Safe to repeat (a redelivered route): withdrawn purposes stay as they are."""
    if not request.gpc or request.verified_at is None or not request.subject_hash:
        return None
    withdrawn, conflicts = consents.withdraw_by_signal(
        ContactItem.key(request.subject_hash),
        gpc.PURPOSES,
        source=gpc.SOURCE,
        ref=f"request:{request.request_id}",
        at=at or clock.now(),
        actor="subject",
    )
    return Recorded(withdrawn, conflicts)


# ------------------------------------------------------------------ forwarded by a controller


def signal_id(controller_id: str, visitor_id: str) -> str:
    """The signal's id: a keyed hash of the controller and the visitor id (never reversible, and
    another controller's same visitor id gives another id)."""
    return SIGNAL_PREFIX + hashing.keyed_hash(_VISITOR_KEY, f"{controller_id}\n{visitor_id}")[:40]


def validate_visitor_id(visitor_id: str) -> str:
    if not isinstance(visitor_id, str) or not VISITOR_ID.fullmatch(visitor_id):
        raise InvalidInput(f"visitor_id must be {VISITOR_ID_RULE}", fields={"visitor_id": "invalid_format"})
    return visitor_id


@dataclass(frozen=True)
class Forwarded:
    signal: GpcSignalItem
    created: bool  # False: this controller forwarded this visitor before; nothing new was recorded


def forward(controller_id: str, visitor_id: str, *, seen_at: datetime | None = None) -> Forwarded:
    """Record a controller's visitor's signal once, with the ledger's withdrawal, and queue its event."""
    validate_visitor_id(visitor_id)
    now = clock.now()
    if seen_at is not None and seen_at.tzinfo is None:
        seen_at = seen_at.replace(tzinfo=timezone.utc)  # an ISO time without an offset is read as UTC
    if seen_at is not None and seen_at > now:
        raise InvalidInput("seen_at is in the future", fields={"seen_at": "in_future"})
    sid = signal_id(controller_id, visitor_id)
    found = _load(sid)
    if found is not None:
        if found.webhook_outcome is None:
            _queue_event(found)  # its first message may be lost; the dispatcher sends it once
        return Forwarded(found, created=False)
    pk = GpcSignalItem.key(sid)
    # The ledger first: it is idempotent, so a forward that fails after it is completed by the
    # controller's retry, and a signal item never stands without its withdrawal.
    _, conflicts = consents.withdraw_by_signal(
        pk, gpc.PURPOSES, source=gpc.SOURCE, ref=f"controller:{controller_id}", at=now, actor="controller"
    )
    signal = GpcSignalItem(
        pk,
        GpcSignalItem.SK,
        signal_id=sid,
        controller_id=controller_id,
        received_at=now,
        seen_at=seen_at,
        purposes=list(gpc.PURPOSES),
        conflicts=sorted(f"{purpose}:{grant}" for purpose, grant in conflicts.items()) or None,
        # Kept as a consent record is: 5 years from the withdrawal it stands for.
        expires_at=retention.expires_at(retention.Rule.CONSENT_RECORD, now),
        **retention.schedule(retention.Rule.CONSENT_RECORD, now, pk, GpcSignalItem.SK),
    )
    try:
        signal.save(condition=GpcSignalItem.pk.does_not_exist())
    except PutError as error:
        if not conditional_failure(error):
            raise
        return Forwarded(_load(sid) or signal, created=False)  # the same forward, in parallel
    _queue_event(signal)
    return Forwarded(signal, created=True)


def _load(sid: str) -> GpcSignalItem | None:
    return retention.live_item(GpcSignalItem, GpcSignalItem.key(sid), GpcSignalItem.SK, consistent_read=True)


def _queue_event(signal: GpcSignalItem) -> None:
    outbox.enqueue_controller_event(
        event=webhooks.EVENT_CONSENT_GPC, controller_id=signal.controller_id, signal_id=signal.signal_id
    )


def view(signal: GpcSignalItem) -> dict:
    """What the controller is told about its signal (the API's answer and the event's data)."""
    return {
        "signal_id": signal.signal_id,
        "controller_id": signal.controller_id,
        "purposes": list(signal.purposes),
        "source": gpc.SOURCE,
        "received_at": clock.isoformat(signal.received_at),
        "seen_at": clock.isoformat(signal.seen_at) if signal.seen_at else None,
        "conflicts": list(signal.conflicts or []),
    }


# ------------------------------------------------------------------ the dispatcher's side


def webhook_data(sid: str, controller_id: str) -> dict:
    """The `consent.gpc` event's data. NotFound for a signal that is gone or another controller's."""
    signal = _load(sid)
    if signal is None or signal.controller_id != controller_id:
        raise NotFound("no such signal")
    return view(signal)


def delivered_before(sid: str) -> bool:
    signal = _load(sid)
    return signal is not None and signal.webhook_outcome == DELIVERED


def record_webhook(sid: str, outcome: str, *, at: datetime | None = None) -> None:
    signal = _load(sid)
    if signal is not None:
        signal.update(
            actions=[GpcSignalItem.webhook_outcome.set(outcome), GpcSignalItem.webhook_at.set(at or clock.now())]
        )
