"""Everything rightsdesk holds about one subject as the operator's own data, found by the keyed hash
of their address: to export it (rightsdesk.own_data.exports) and to erase it (rightsdesk.own_data.own_requests).

The subject's contact partition (CONTACT#<hash>) holds the contact, its list memberships, the
consent ledger, the contact's audit events, and a pointer to each request the subject made to the
operator itself (filed when the request is carried out). Breach notices to the subject sit under
their incident (INCIDENT#<id> / NOTICE#subject#<hash>): the incidents are listed from GSI1 (a few a
year) and each notice read by its key. A suppression is one key. Nothing scans.

Not covered, on purpose: requests to other controllers, which rightsdesk only forwards as their
processor (they answer for them, and their personal fields go an hour after delivery), and
requests never verified (nobody proved the address; they are deleted after 72 hours).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from pynamodb.exceptions import UpdateError

from rightsdesk.audience import consents
from rightsdesk.kernel import clock, retention
from rightsdesk.notices import breaches
from rightsdesk.notices.breaches import SUBJECT
from rightsdesk.store import audit, deletion, queries
from rightsdesk.store.items.audience import ConsentItem, ContactItem, ListMemberItem, SuppressionItem
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.notices import IncidentItem, NoticeItem
from rightsdesk.store.items.requests import RequestItem, SubjectRequestItem

log = logging.getLogger(__name__)


@dataclass
class Holdings:
    subject_hash: str
    contact: ContactItem | None = None
    memberships: list[ListMemberItem] = field(default_factory=list)
    consents: list[ConsentItem] = field(default_factory=list)
    pointers: list[SubjectRequestItem] = field(default_factory=list)
    requests: list[RequestItem] = field(default_factory=list)
    notices: list[tuple[IncidentItem, NoticeItem]] = field(default_factory=list)
    suppression: SuppressionItem | None = None
    history: list[AuditEvent] = field(default_factory=list)  # the contact partition's audit events


def file_request(request: RequestItem) -> None:
    """Point from the subject to this request; writing it again changes nothing."""
    SubjectRequestItem(
        ContactItem.key(request.subject_hash),
        f"{SubjectRequestItem.SK_PREFIX}{request.request_id}",
        request_id=request.request_id,
        created_at=request.created_at,
        # kept as long as the request's skeleton, which it points at
        expires_at=retention.request_expires_at(request.created_at, request.verified_at),
    ).save()


def gather(subject_hash: str) -> Holdings:
    pk = ContactItem.key(subject_hash)
    found = Holdings(subject_hash)
    found.contact = retention.live_item(ContactItem, pk, ContactItem.SK, consistent_read=True)
    found.memberships = _live(
        ListMemberItem.query(pk, ListMemberItem.sk.startswith(ListMemberItem.SK_PREFIX), consistent_read=True)
    )
    found.consents = consents.ledger(subject_hash)
    found.pointers = _live(
        SubjectRequestItem.query(
            pk, SubjectRequestItem.sk.startswith(SubjectRequestItem.SK_PREFIX), consistent_read=True
        )
    )
    keys = [(RequestItem.key(p.request_id), RequestItem.SK) for p in found.pointers]
    requests = RequestItem.batch_get(keys) if keys else []
    found.requests = sorted(
        (r for r in requests if queries.is_visible(r) and r.subject_hash == subject_hash), key=lambda r: r.created_at
    )
    found.notices = _breach_notices(subject_hash)
    found.suppression = retention.live_item(SuppressionItem, SuppressionItem.key(subject_hash), SuppressionItem.SK)
    found.history = audit.trail(pk)
    return found


def _live(items) -> list:
    return [item for item in items if retention.is_live(item)]


def _breach_notices(subject_hash: str) -> list[tuple[IncidentItem, NoticeItem]]:
    found = []
    for incident in IncidentItem.listing.query(IncidentItem.PARTITION):
        notice = retention.live_item(NoticeItem, incident.pk, NoticeItem.sort_key(SUBJECT, subject_hash))
        if notice is not None:
            found.append((incident, notice))
    return found


# ------------------------------------------------------------------ erasure


@dataclass
class Erased:
    """Counts only: what an erasure removed (for logs and the CLI)."""

    deleted: int = 0
    purged: int = 0
    held: int = 0


def erase(holdings: Holdings, *, request: RequestItem, started_at: datetime) -> Erased:
    """Delete the subject's contact, memberships, consents and request pointers; take the address
    out of breach notices to them (the notice and its status stay: the incident's record of who was
    told); purge the personal fields of their other requests (the erasure request itself is purged
    by the caller's closing write). Each deletion and purge is audited with cause `erasure`.

    `started_at` must be the same on every attempt (the request's move to in_progress): it keys the
    audit events written here, so a retried erasure cannot write them twice.
    """
    done = Erased()
    for item in [*holdings.memberships, *holdings.pointers]:
        done.deleted += _delete_recorded(item, request.request_id, started_at)
    for incident, notice in holdings.notices:
        done.purged += _unaddress(incident, notice, request.request_id, started_at)
    if holdings.contact is not None:
        done.deleted += _delete_recorded(holdings.contact, request.request_id, started_at)
    for consent in holdings.consents:
        # Consent records carry their retention rule: the stream handler audits their deletion.
        done.deleted += deletion.erase(consent)
    for other in holdings.requests:
        if other.request_id == request.request_id or other.personal_purged_at is not None:
            continue
        if other.legal_hold is not None:
            done.held += 1
            continue
        done.purged += _purge(other, started_at)
    return done


def _delete_recorded(item, request_id: str, at: datetime) -> int:
    """Delete an item that carries no retention rule, so the stream handler does not see its
    deletion: mark it, write the same audit event the handler would, then delete it."""
    epoch = int(at.timestamp())
    if not deletion.mark(item, deletion.Cause.ERASURE, at=epoch):
        return 0  # gone already (a retried erasure), or held
    deletion.record(
        deletion.Change(
            kind=deletion.DELETED,
            pk=item.pk,
            sk=item.sk,
            event_id=f"erasure:{request_id}:{item.pk}:{item.sk}",
            old={"deleted_by": deletion.Cause.ERASURE.value, "deleted_at": epoch},
        )
    )
    return int(deletion.delete_marked(item, deletion.Cause.ERASURE))


def _unaddress(incident: IncidentItem, notice: NoticeItem, request_id: str, at: datetime) -> int:
    """Remove the address from a breach notice: one not sent yet never will be (suppressed)."""
    if not notice.email:
        return 0
    breaches.record_outcome(incident.incident_id, notice.sk, breaches.SUPPRESSED, at)  # no-op once sent
    deletion.record(
        deletion.Change(
            kind=deletion.PURGED,
            pk=notice.pk,
            sk=notice.sk,
            event_id=f"erasure:{request_id}:{notice.pk}:{notice.sk}",
            new={"purged_by": deletion.Cause.ERASURE.value, "personal_purged_at": clock.isoformat(at)},
        )
    )
    try:
        notice.update(actions=[NoticeItem.email.remove()], condition=NoticeItem.pk.exists())
    except UpdateError as error:
        if deletion.conditional_failure(error):
            return 0
        raise
    return 1


def _purge(request: RequestItem, at: datetime) -> int:
    try:
        request.update(
            actions=deletion.purge_actions(RequestItem, deletion.Cause.ERASURE, at),
            condition=RequestItem.pk.exists() & deletion.NOT_HELD,
        )
    except UpdateError as error:
        if deletion.conditional_failure(error):
            return 0
        raise
    return 1
