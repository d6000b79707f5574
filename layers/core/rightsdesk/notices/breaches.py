"""Personal-data breaches: the incident, its 72-hour clock, and one notice per recipient.

GDPR Art. 33: a processor tells its controllers without undue delay, and a controller tells its
supervisory authority within 72 hours of becoming aware; our promise is both within 72 hours of
detection, so each incident carries two deadlines, detection + 72 h. Art. 34: when the risk to
people is high, the people concerned are told too; with `notify_subjects` we do that for the
controllers, writing to the subjects whose verified address we still hold.

The incident holds only what the operator typed, ids, dates and counts. Recipients' addresses live
in the notice items alone (INCIDENT#<id> / NOTICE#<kind>#<recipient>), which are deleted under the
retention rule `breach_recipient`. A notice is pending until the notifier records its outcome: sent,
suppressed (the address bounced or complained before) or failed (retries exhausted; a redrive may
still send it). Recording it is one conditional write on the notice; the notices are the truth about
what was sent, counted by a query of the incident's partition. The incident keeps a snapshot of
those counts (its Tally maps, rule `breach_record`), refreshed whenever they are counted, so the
record of who was told outlives the addresses.

Each deadline (controllers, the authority, and the subjects when they are told) reads open / met on
time / met late / missed by rightsdesk.kernel.deadline_state: the controllers' and subjects' deadlines are
met when the last of their notices was sent or suppressed, none pending or failed (recorded on the incident,
`<kind>_notified_at`), the authority's when its notification is recorded. A notification later
than 72 hours needs the operator's reasons for the delay (GDPR Art. 33(1)): declaring after the 72
hours, or recording the authority's notification after them, is refused without them, and
`explain_delay` records them for notices notified late. They are kept on the incident
(`delay_reasons`) and given to the controllers with the notice.

A controller delivering by webhook also gets a signed `breach.notice` event from the dispatcher.
Its outcome (WEBHOOK_OUTCOMES) is written on the controller's notice and, as an audit event, on the
incident, which keeps it after the notice has expired. The mail is the notice either way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pynamodb.attributes import MapAttribute
from pynamodb.exceptions import TransactWriteError, UpdateError

from rightsdesk.kernel import clock, deadline_state, retention
from rightsdesk.kernel.delivery_mode import DeliveryMode
from rightsdesk.kernel.errors import Conflict, InvalidInput, NotFound
from rightsdesk.kernel.status import UNPROVEN
from rightsdesk.platform import hashing, webhooks
from rightsdesk.platform.operator_identity import Actor, actor_name
from rightsdesk.routing import controller_lookup
from rightsdesk.store import audit, outbox, queries
from rightsdesk.store.deletion import conditional_failure
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.notices import IncidentItem, NoticeItem, Tally
from rightsdesk.store.items.requests import RequestItem
from rightsdesk.store.items.table import transaction

DEADLINE = timedelta(hours=72)
CONTROLLER = "controller"
SUBJECT = "subject"
KINDS = (CONTROLLER, SUBJECT)
PENDING, SENT, FAILED, SUPPRESSED = "pending", "sent", "failed", "suppressed"
STATUSES = (PENDING, SENT, FAILED, SUPPRESSED)
# Which status may become which: a failed notice may still be sent (a DLQ redrive), nothing else goes back.
OUTCOME_FROM = {SENT: (PENDING, FAILED), SUPPRESSED: (PENDING, FAILED), FAILED: (PENDING,)}
WEBHOOK_EVENT = webhooks.EVENT_BREACH_NOTICE
DELIVERED, DISABLED = "delivered", "disabled"
WEBHOOK_OUTCOMES = (DELIVERED, FAILED, DISABLED)
WEBHOOK_AUDIT = "breach_webhook"
RESENT_AUDIT = "notices_resent"  # an operator queued the pending and failed notices again
# A subject whose address was never verified is not written to: we never proved it is theirs.
CATEGORY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_TEXT = 4000
# The incident's deadlines, in the order they are shown; `subjects` only when subjects are told.
DEADLINE_NAMES = ("controllers", "authority", "subjects")
# Which kind of notice meets which deadline.
NOTICE_DEADLINES = {CONTROLLER: "controllers", SUBJECT: "subjects"}

Progress = Callable[[int], None]  # called with how many notices were just queued


@dataclass(frozen=True)
class Declaration:
    detected_at: datetime
    summary: str
    categories: list[str]
    contact: str
    controller_ids: list[str] | None = None  # None: every controller
    high_risk: bool = False
    notify_subjects: bool = False
    consequences: str | None = None
    measures: str | None = None
    delay_reason: str | None = None  # required once the 72 hours have passed (Art. 33(1))
    actor: Actor = "operator"


@dataclass
class Recipient:
    kind: str
    key: str
    email: str
    locale: str
    controller_ids: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ declaring


def _refuse(problems: dict[str, tuple[str, str]], what: str) -> None:
    """InvalidInput naming each rule that refused (the CLI shows the message, the API the fields)."""
    if problems:
        rules = "; ".join(rule for _, rule in problems.values())
        raise InvalidInput(f"{what}: {rules}", fields={name: code for name, (code, _) in problems.items()})


def late_after(detected_at: datetime, now: datetime) -> bool:
    """True once the 72 hours since detection have passed: a notification now is late."""
    return now > detected_at + DEADLINE


def _check(declaration: Declaration, now: datetime) -> None:
    problems: dict[str, tuple[str, str]] = {}
    if declaration.detected_at > now:
        problems["detected_at"] = (
            "in_the_future",
            "detected_at lies in the future; a breach is declared once it has been detected",
        )
    if not declaration.summary.strip() or len(declaration.summary) > MAX_TEXT:
        problems["summary"] = (
            ("required", "a summary is required")
            if not declaration.summary.strip()
            else ("too_long", f"the summary is longer than {MAX_TEXT} characters")
        )
    if not declaration.categories or not all(CATEGORY.fullmatch(c) for c in declaration.categories):
        problems["categories"] = (
            "invalid_format",
            "categories are one or more lowercase words (a-z, 0-9, _; at most 40 characters each)",
        )
    if not declaration.contact.strip() or len(declaration.contact) > 300:
        problems["contact"] = ("required", "a contact is required (at most 300 characters)")
    for name in ("consequences", "measures", "delay_reason"):
        if len(getattr(declaration, name) or "") > MAX_TEXT:
            problems[name] = ("too_long", f"{name} is longer than {MAX_TEXT} characters")
    if declaration.notify_subjects and not declaration.high_risk:
        problems["notify_subjects"] = (
            "needs_high_risk",
            "subjects are notified only of a breach likely to "
            "result in a high risk to them (GDPR Art. 34(1)): "
            "declare it high risk, or do not notify subjects",
        )
    if declaration.controller_ids is not None and not declaration.controller_ids:
        problems["controllers"] = ("required", "name at least one affected controller")
    if (
        declaration.detected_at <= now
        and late_after(declaration.detected_at, now)
        and not (declaration.delay_reason or "").strip()
    ):
        problems["delay_reason"] = (
            "required_after_72_hours",
            "more than 72 hours have passed since detection: "
            "a late notification must give the reasons for "
            "the delay (GDPR Art. 33(1))",
        )
    _refuse(problems, "this breach cannot be declared as given")


def _controllers(ids: list[str] | None) -> list[ControllerItem]:
    if ids is None:
        return [c for c in queries.list_controllers() if c.delivery != DeliveryMode.INTERNAL]
    found = []
    for controller_id in dict.fromkeys(ids):
        controller = controller_lookup.get_controller(controller_id)
        if controller is None:
            raise NotFound(f"no controller {controller_id}")
        found.append(controller)
    return found


def subjects_of(controller_ids: list[str]) -> list[Recipient]:
    """The subjects of these controllers whose verified address is still held, one per subject."""
    found: dict[str, tuple[datetime, Recipient]] = {}
    for controller_id in controller_ids:
        for request in queries.controller_requests(controller_id):
            if not _reachable(request):
                continue
            seen = found.get(request.subject_hash)
            if seen is None:
                recipient = Recipient(SUBJECT, request.subject_hash, request.email, request.locale)
                found[request.subject_hash] = (request.created_at, recipient)
            elif request.created_at > seen[0]:  # the latest request's address and language win
                seen[1].email, seen[1].locale = request.email, request.locale
                found[request.subject_hash] = (request.created_at, seen[1])
            recipient = found[request.subject_hash][1]
            if controller_id not in recipient.controller_ids:
                recipient.controller_ids.append(controller_id)
    return [recipient for _, recipient in sorted(found.values(), key=lambda pair: pair[1].key)]


def _reachable(request: RequestItem) -> bool:
    if not request.email or not request.subject_hash or request.personal_purged_at is not None:
        return False
    if request.status in UNPROVEN:
        return False
    held = request.legal_hold is not None
    return held or not retention.personal_data_due(request.retention_rule, request.retention_due_at)


def declare(declaration: Declaration, *, now: datetime | None = None, progress: Progress | None = None) -> IncidentItem:
    """Record the incident and its notices, then queue one mail per notice (and webhook copies)."""
    now = now or clock.now()
    _check(declaration, now)
    controllers = _controllers(declaration.controller_ids)
    if not controllers:
        raise InvalidInput("no controller to notify", fields={"controllers": "required"})
    recipients = [
        Recipient(CONTROLLER, c.controller_id, c.contact_email, c.locale, [c.controller_id]) for c in controllers
    ]
    if declaration.notify_subjects:
        recipients += subjects_of([c.controller_id for c in controllers])
    incident_id = hashing.new_id("inc")
    pk = IncidentItem.key(incident_id)
    # Notices first: a declaration cut short leaves orphans that expire, never an incident whose
    # counts promise notices that do not exist.
    notices = [_notice(incident_id, recipient, now) for recipient in recipients]
    with NoticeItem.batch_write() as batch:
        for notice in notices:
            batch.save(notice)
    incident = _incident(incident_id, declaration, controllers, recipients, now)
    event = audit.event(
        pk,
        action="breach_declared",
        actor=declaration.actor,
        at=now,
        cause=f"controllers_{len(controllers)}_subjects_{len(recipients) - len(controllers)}",
    )
    event.expires_at = record_expires_at(declaration.detected_at)
    with transaction() as tx:
        tx.save(incident, condition=IncidentItem.pk.does_not_exist())
        tx.save(event, condition=AuditEvent.sk.does_not_exist())
    queue(incident, notices, progress=progress)
    hooked = [c for c in controllers if c.delivery == DeliveryMode.WEBHOOK]
    for controller in hooked:
        outbox.enqueue_controller_event(
            event=WEBHOOK_EVENT, controller_id=controller.controller_id, incident_id=incident_id
        )
    if hooked:
        incident.update(actions=[IncidentItem.webhooks_queued.set(len(hooked))])
    return incident


def _notice(incident_id: str, recipient: Recipient, now: datetime) -> NoticeItem:
    return NoticeItem(
        IncidentItem.key(incident_id),
        NoticeItem.sort_key(recipient.kind, recipient.key),
        incident_id=incident_id,
        kind=recipient.kind,
        recipient=recipient.key,
        email=recipient.email,
        locale=recipient.locale,
        controller_ids=recipient.controller_ids,
        status=PENDING,
        mail_id=f"breach-{incident_id}-{recipient.kind}-{recipient.key[:32]}",
        updated_at=now,
        expires_at=retention.expires_at(retention.Rule.BREACH_RECIPIENT, now),
    )


def _incident(
    incident_id: str,
    declaration: Declaration,
    controllers: list[ControllerItem],
    recipients: list[Recipient],
    now: datetime,
) -> IncidentItem:
    detected = declaration.detected_at
    incident = IncidentItem(
        IncidentItem.key(incident_id),
        IncidentItem.SK,
        incident_id=incident_id,
        detected_at=detected,
        declared_at=now,
        declared_by=actor_name(declaration.actor),  # who exactly: the breach_declared audit event
        summary=declaration.summary.strip(),
        categories=list(dict.fromkeys(declaration.categories)),
        consequences=(declaration.consequences or "").strip() or None,
        measures=(declaration.measures or "").strip() or None,
        contact=declaration.contact.strip(),
        high_risk=declaration.high_risk,
        notify_subjects=declaration.notify_subjects,
        controller_ids=[c.controller_id for c in controllers],
        controllers_due_at=detected + DEADLINE,
        authority_due_at=detected + DEADLINE,
        expires_at=record_expires_at(detected),
        gsi1pk=IncidentItem.PARTITION,
        gsi1sk=f"{clock.isoformat(detected)}#{incident_id}",
    )
    reason = (declaration.delay_reason or "").strip()
    if reason and late_after(detected, now):
        incident.delay_reasons = {
            "controllers": reason,
            **({"subjects": reason} if declaration.notify_subjects else {}),
        }
    incident.controllers.pending = sum(1 for r in recipients if r.kind == CONTROLLER)
    incident.subjects.pending = sum(1 for r in recipients if r.kind == SUBJECT)
    return incident


def mail_for(incident: IncidentItem, notice: NoticeItem) -> dict:
    """The MailQueue message of one notice: its ids; the notifier reads the rest when it sends
    (notice_mail) and records the notice's outcome."""
    return outbox.mail_body("breach_notice", mail_id=notice.mail_id, incident_id=incident.incident_id, notice=notice.sk)


def notice_mail(incident_id: str, notice_sk: str) -> tuple[str, str, str, dict] | None:
    """(address, locale, template, context) of a notice's mail, read now; None if the incident or
    the notice is gone or no longer holds an address (an erased subject, past retention)."""
    try:
        incident = load(incident_id)
    except NotFound:
        return None
    notice = retention.live_item(NoticeItem, incident.pk, notice_sk, consistent_read=True)
    if notice is None or not notice.email:
        return None
    context = {
        "incident_id": incident.incident_id,
        "detected_at": clock.isoformat(incident.detected_at),
        "summary": incident.summary,
        "categories": list(incident.categories),
        "consequences": incident.consequences,
        "measures": incident.measures,
        "contact": incident.contact,
        "high_risk": bool(incident.high_risk),
    }
    names = []
    for controller_id in notice.controller_ids:
        controller = controller_lookup.get_controller(controller_id)
        names.append(controller.name if controller is not None else controller_id)
    if notice.kind == CONTROLLER:
        template = "breach_controller"
        context.update(
            controller_name=names[0],
            subjects_notified=bool(incident.notify_subjects),
            delay_reason=delay_reason(incident, "controllers"),
        )
    else:
        template = "breach_subject"
        context.update(controller_names=names)
    return notice.email, notice.locale, template, context


def queue(incident: IncidentItem, notices: list[NoticeItem], *, progress: Progress | None = None) -> int:
    """Queue the notices' mails; queueing one twice is harmless (the notifier sends a mail id once)."""
    batch: list[dict] = []
    for notice in notices:
        batch.append(mail_for(incident, notice))
        if len(batch) == 100:
            outbox.enqueue_mails(batch)
            if progress:
                progress(len(batch))
            batch = []
    if batch:
        outbox.enqueue_mails(batch)
        if progress:
            progress(len(batch))
    return len(notices)


# ------------------------------------------------------------------ reading


def load(incident_id: str) -> IncidentItem:
    if not incident_id or len(incident_id) > 64:
        raise NotFound("no such incident")
    incident = retention.live_item(IncidentItem, IncidentItem.key(incident_id), IncidentItem.SK, consistent_read=True)
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    return incident


def notices(incident_id: str, *, statuses: tuple[str, ...] | None = None) -> Iterator[NoticeItem]:
    """The incident's live notices, controllers first (the sort key says so)."""
    items = NoticeItem.query(IncidentItem.key(incident_id), NoticeItem.sk.startswith(NoticeItem.SK_PREFIX))
    for item in items:
        if retention.is_live(item) and (statuses is None or item.status in statuses):
            yield item


def record_expires_at(detected_at: datetime) -> int:
    """When the incident and every audit event of it go: all of it is the Art. 33(5) record, kept
    under Rule.BREACH_RECORD from detection, so an event written late never outlives the incident."""
    return retention.expires_at(retention.Rule.BREACH_RECORD, detected_at)


def recent(now: datetime | None = None, *, since: timedelta = DEADLINE + timedelta(days=7)) -> Iterator[IncidentItem]:
    """Incidents detected within `since` of now (the deadline watch's window), from GSI1, no scan."""
    low = clock.isoformat((now or clock.now()) - since)
    for item in IncidentItem.listing.query(IncidentItem.PARTITION, IncidentItem.gsi1sk >= low):
        if retention.is_live(item):
            yield item


def history(incident_id: str, limit: int = 50) -> list[AuditEvent]:
    """The incident's latest audit events, newest first: its declaration, the authority's record,
    reasons for delays, resends, webhook outcomes and the deadline watch's warnings."""
    incident = load(incident_id)
    return audit.latest(incident.pk, limit)


def _empty() -> dict[str, dict[str, int]]:
    return {kind: dict.fromkeys(STATUSES, 0) for kind in (*KINDS, "total")}


def tally(incident: IncidentItem, *, record: bool = True) -> dict[str, dict[str, int]]:
    """Notices per kind and status, counted from the notices themselves (a query of the incident's
    partition, five attributes each); once they have expired, the incident's last snapshot.
    `record` refreshes that snapshot when the count differs from it, and records when a kind's
    notices were all sent or suppressed (`<kind>_notified_at`), the time its deadline is read against."""
    counts = _empty()
    notified_at_by_kind: dict[str, datetime] = {}
    items = NoticeItem.query(
        incident.pk,
        NoticeItem.sk.startswith(NoticeItem.SK_PREFIX),
        attributes_to_get=["kind", "status", "expires_at", "sent_at", "updated_at"],
    )
    for item in items:
        if retention.is_live(item) and item.kind in KINDS and item.status in STATUSES:
            counts[item.kind][item.status] += 1
            counts["total"][item.status] += 1
            if item.status in (SENT, SUPPRESSED):
                at = item.sent_at or item.updated_at
                notified_at_by_kind[item.kind] = max(at, notified_at_by_kind.get(item.kind, at))
    stored = _snapshot(incident)
    if not any(counts["total"].values()):
        return stored
    if record:
        if counts != stored:
            _record(incident, counts)
        for kind, at in notified_at_by_kind.items():
            if _all_notified(counts[kind]) and getattr(incident, f"{NOTICE_DEADLINES[kind]}_notified_at") is None:
                _record_notified(incident, kind, at)
    return counts


def _all_notified(counts: dict[str, int]) -> bool:
    return counts[PENDING] == 0 and counts[FAILED] == 0 and (counts[SENT] + counts[SUPPRESSED]) > 0


def _record_notified(incident: IncidentItem, kind: str, at: datetime) -> None:
    attribute = getattr(IncidentItem, f"{NOTICE_DEADLINES[kind]}_notified_at")
    try:
        incident.update(actions=[attribute.set(at)], condition=IncidentItem.pk.exists() & attribute.does_not_exist())
    except UpdateError as error:
        if not conditional_failure(error):
            raise
        incident.refresh(consistent_read=True)  # another reader recorded it first


def _snapshot(incident: IncidentItem) -> dict[str, dict[str, int]]:
    counts = _empty()
    for kind, attribute in ((CONTROLLER, incident.controllers), (SUBJECT, incident.subjects)):
        for status in STATUSES:
            counts[kind][status] = int(getattr(attribute, status, 0) or 0)
            counts["total"][status] += counts[kind][status]
    return counts


def _record(incident: IncidentItem, counts: dict[str, dict[str, int]]) -> None:
    controllers, subjects = Tally(**counts[CONTROLLER]), Tally(**counts[SUBJECT])
    incident.update(
        actions=[IncidentItem.controllers.set(controllers), IncidentItem.subjects.set(subjects)],
        condition=IncidentItem.pk.exists(),
    )


def delay_reasons(incident: IncidentItem) -> dict[str, str]:
    value = incident.delay_reasons
    if value is None:
        return {}
    return dict(value.as_dict() if isinstance(value, MapAttribute) else value)


def delay_reason(incident: IncidentItem, deadline: str) -> str | None:
    return delay_reasons(incident).get(deadline)


def met_at(incident: IncidentItem, deadline: str, counts: dict) -> datetime | None:
    """When a deadline's action happened: its notices all sent or suppressed, or the authority's notification."""
    if deadline == "authority":
        return incident.authority_notified_at
    kind = CONTROLLER if deadline == "controllers" else SUBJECT
    if not any(counts[kind].values()):
        return incident.declared_at  # nobody of this kind to tell (no subject's address held): done when declared
    recorded = getattr(incident, f"{deadline}_notified_at")
    if recorded is not None or not _all_notified(counts[kind]):
        return recorded
    return incident.declared_at  # notified before those times were recorded: declared is the best we know


def deadlines(incident: IncidentItem, counts: dict, now: datetime | None = None) -> list[dict]:
    """Each deadline of the incident as rightsdesk.kernel.deadline_state reads it, with the reasons for a delay."""
    now = now or clock.now()
    rows = []
    for name in DEADLINE_NAMES:
        if name == "subjects" and not incident.notify_subjects:
            continue
        due = incident.authority_due_at if name == "authority" else incident.controllers_due_at
        found = deadline_state.standing(due, met_at(incident, name, counts), now)
        rows.append(
            {
                "deadline": name,
                "due_at": due,
                "state": found.state,
                "met_at": found.met_at,
                "late_by_seconds": int(found.late_by.total_seconds()) if found.late_by is not None else None,
                "seconds_left": int((due - now).total_seconds()),
                "label": found.label(),
                "delay_reason": delay_reason(incident, name),
            }
        )
    return rows


def webhook_data(incident_id: str, controller_id: str) -> dict:
    """`data` of a `breach.notice` webhook event to one controller: the operator's facts, no recipient."""
    incident = load(incident_id)
    if controller_id not in incident.controller_ids:
        raise NotFound(f"incident {incident_id} does not concern controller {controller_id}")
    return {
        "incident_id": incident.incident_id,
        "controller_id": controller_id,
        "detected_at": clock.isoformat(incident.detected_at),
        "declared_at": clock.isoformat(incident.declared_at),
        "summary": incident.summary,
        "categories": list(incident.categories),
        "likely_consequences": incident.consequences,
        "measures": incident.measures,
        "contact": incident.contact,
        "high_risk": bool(incident.high_risk),
        "subjects_notified": bool(incident.notify_subjects),
        "notify_authority_by": clock.isoformat(incident.authority_due_at),
        # why this notice comes later than 72 hours after detection (Art. 33(1)); None when it did not
        "delay_reason": delay_reason(incident, "controllers"),
    }


def webhook_outcome(incident_id: str, controller_id: str) -> str | None:
    """What the controller's notice says of its `breach.notice` webhook; None before any outcome."""
    try:
        notice = NoticeItem.get(
            IncidentItem.key(incident_id),
            NoticeItem.sort_key(CONTROLLER, controller_id),
            consistent_read=True,
            attributes_to_get=["webhook"],
        )
    except NoticeItem.DoesNotExist:
        return None
    return notice.webhook


def webhook_outcomes(incident: IncidentItem) -> dict[str, str]:
    """Each webhook controller's latest `breach.notice` outcome, from the incident's audit trail (kept
    with the incident, after the notices that also show it have expired)."""
    outcomes: dict[str, str] = {}
    for event in AuditEvent.query(
        incident.pk, AuditEvent.sk.startswith(AuditEvent.SK_PREFIX), filter_condition=AuditEvent.action == WEBHOOK_AUDIT
    ):
        controller_id, _, rest = (event.cause or "").partition(":")
        outcomes[controller_id] = rest.partition(":")[0]  # oldest first: the latest stays
    return outcomes


# ------------------------------------------------------------------ changes after declaring


def record_outcome(incident_id: str, notice_sk: str, outcome: str, at: datetime | None = None) -> bool:
    """Record what became of a notice's mail. False if it was recorded already (a redelivered
    message) or is past its retention: nothing changes."""
    if outcome not in OUTCOME_FROM:
        raise ValueError(f"a notice cannot be recorded as {outcome!r}")
    at = at or clock.now()
    actions = [NoticeItem.status.set(outcome), NoticeItem.updated_at.set(at)]
    if outcome == SENT:
        actions.append(NoticeItem.sent_at.set(at))
    notice = NoticeItem(IncidentItem.key(incident_id), notice_sk)
    try:
        notice.update(
            actions=actions, condition=NoticeItem.pk.exists() & NoticeItem.status.is_in(*OUTCOME_FROM[outcome])
        )
    except UpdateError as error:
        if conditional_failure(error):
            return False
        raise
    return True


def record_webhook(
    incident_id: str, controller_id: str, outcome: str, *, cause: str, at: datetime | None = None
) -> bool:
    """Record what became of a controller's `breach.notice` webhook: on its notice, with an audit
    event, in one write. False if nothing changed: the notice is gone, it was delivered already, or
    it already says `outcome` (a redelivered message)."""
    if outcome not in WEBHOOK_OUTCOMES:
        raise ValueError(f"a breach webhook cannot end as {outcome!r}")
    at = at or clock.now()
    try:
        incident = load(incident_id)
    except NotFound:
        return False
    notice = NoticeItem(incident.pk, NoticeItem.sort_key(CONTROLLER, controller_id))
    event = audit.event(
        incident.pk, action=WEBHOOK_AUDIT, actor="dispatcher", at=at, cause=f"{controller_id}:{outcome}:{cause}"
    )
    event.expires_at = record_expires_at(incident.detected_at)
    # A failure or a 410 may still be followed by a delivery (a DLQ redrive); a delivery is final.
    changes = NoticeItem.webhook.does_not_exist() | ~NoticeItem.webhook.is_in(DELIVERED, outcome)
    try:
        with transaction() as tx:
            tx.update(
                notice,
                actions=[NoticeItem.webhook.set(outcome), NoticeItem.webhook_at.set(at)],
                condition=NoticeItem.pk.exists() & changes,
            )
            tx.save(event, condition=AuditEvent.sk.does_not_exist())
    except TransactWriteError as error:
        if conditional_failure(error):
            return False
        raise
    return True


def authority_notified(
    incident_id: str, *, reference: str, at: datetime, actor: Actor = "operator", delay_reason: str | None = None
) -> IncidentItem:
    """Record when the supervisory authority was notified, and its reference; once. A notification
    later than 72 hours after detection is recorded only with the reasons for the delay (Art. 33(1))."""
    reference = reference.strip()
    reason = (delay_reason or "").strip()
    problems: dict[str, tuple[str, str]] = {}
    if not reference or len(reference) > 200:
        problems["reference"] = ("required", "give the authority's reference (at most 200 characters)")
    if len(reason) > MAX_TEXT:
        problems["delay_reason"] = ("too_long", f"delay_reason is longer than {MAX_TEXT} characters")
    _refuse(problems, "the authority's notification cannot be recorded")
    incident = load(incident_id)
    now = clock.now()
    if at > now or at < incident.detected_at:
        problems["at"] = ("out_of_range", "the notification must lie between detection and now")
    elif at > incident.authority_due_at and not reason:
        problems["delay_reason"] = (
            "required_after_72_hours",
            f"the authority was notified after the 72-hour deadline "
            f"({clock.isoformat(incident.authority_due_at)}): a late notification must "
            "give the reasons for the delay (GDPR Art. 33(1))",
        )
    _refuse(problems, "the authority's notification cannot be recorded")
    event = audit.event(
        incident.pk,
        action="authority_notified",
        actor=actor,
        at=now,
        cause="late_with_reasons" if at > incident.authority_due_at else None,
    )
    event.expires_at = record_expires_at(incident.detected_at)
    actions = [IncidentItem.authority_notified_at.set(at), IncidentItem.authority_reference.set(reference)]
    if at > incident.authority_due_at:
        actions.append(IncidentItem.delay_reasons.set({**delay_reasons(incident), "authority": reason}))
    try:
        with transaction() as tx:
            tx.update(incident, actions=actions, condition=IncidentItem.authority_notified_at.does_not_exist())
            tx.save(event, condition=AuditEvent.sk.does_not_exist())
    except TransactWriteError as error:
        raise Conflict(
            f"the authority's notification of {incident_id} is already recorded", code="already_recorded"
        ) from error
    incident.refresh()
    return incident


def explain_delay(incident_id: str, deadline: str, *, reason: str, actor: Actor = "operator") -> IncidentItem:
    """Record the reasons for a notification that came (or is coming) later than 72 hours, for a
    deadline that reads met late or missed; once per deadline (Art. 33(1))."""
    reason = (reason or "").strip()
    problems: dict[str, tuple[str, str]] = {}
    if deadline not in DEADLINE_NAMES:
        problems["deadline"] = ("invalid_choice", f"the deadline is one of {', '.join(DEADLINE_NAMES)}")
    if not reason or len(reason) > MAX_TEXT:
        problems["reason"] = ("required", f"give the reasons for the delay (at most {MAX_TEXT} characters)")
    _refuse(problems, "the reasons for the delay cannot be recorded")
    incident = load(incident_id)
    rows = {row["deadline"]: row for row in deadlines(incident, tally(incident))}
    if deadline not in rows:
        _refuse(
            {
                "deadline": (
                    "not_applicable",
                    f"incident {incident_id} has no {deadline} deadline: its subjects are not notified",
                )
            },
            "the reasons cannot be recorded",
        )
    if rows[deadline]["state"] not in (deadline_state.MET_LATE, deadline_state.MISSED):
        _refuse(
            {
                "deadline": (
                    "not_late",
                    f"the {deadline} deadline reads {rows[deadline]['label']}: reasons "
                    "for a delay are recorded for a late or missed notification only",
                )
            },
            "the reasons cannot be recorded",
        )
    now = clock.now()
    event = audit.event(incident.pk, action="delay_explained", actor=actor, at=now, cause=deadline)
    event.expires_at = record_expires_at(incident.detected_at)
    if delay_reason(incident, deadline):
        raise Conflict(
            f"the reasons for the {deadline} delay of {incident_id} are already recorded", code="already_recorded"
        )
    if incident.delay_reasons is None:
        action = IncidentItem.delay_reasons.set({deadline: reason})
        unrecorded = IncidentItem.delay_reasons.does_not_exist()
    else:
        action = IncidentItem.delay_reasons[deadline].set(reason)
        unrecorded = IncidentItem.delay_reasons[deadline].does_not_exist()
    try:
        with transaction() as tx:
            tx.update(incident, actions=[action], condition=IncidentItem.pk.exists() & unrecorded)
            tx.save(event, condition=AuditEvent.sk.does_not_exist())
    except TransactWriteError as error:
        raise Conflict("the incident changed meanwhile; try again", code="conflict") from error
    incident.refresh()
    return incident


def resend(incident_id: str, *, actor: Actor = "operator", progress: Progress | None = None) -> int:
    """Queue again every notice still pending or failed (after an interrupted declaration, or once
    a failed address is fixed); what was sent is never sent twice. One audit event `notices_resent`
    on the incident says who did it and how many of each kind went (nothing when none was waiting)."""
    incident = load(incident_id)
    waiting = list(notices(incident_id, statuses=(PENDING, FAILED)))
    queued = queue(incident, waiting, progress=progress)
    if queued:
        controllers = sum(1 for notice in waiting if notice.kind == CONTROLLER)
        event = audit.event(
            incident.pk,
            action=RESENT_AUDIT,
            actor=actor,
            cause=f"controllers_{controllers}_subjects_{queued - controllers}",
        )
        event.expires_at = record_expires_at(incident.detected_at)
        # Written after the queueing, not with it: the resend changes no item (the notices keep their
        # status until the notifier records an outcome), it puts mails on a queue, which no DynamoDB
        # transaction covers. A run cut short before this line queued mails the notifier sends once
        # (by mail id) and left no claim on the trail; running it again records it.
        event.save(condition=AuditEvent.sk.does_not_exist())
    return queued


def claim_warning(incident: IncidentItem, warning: str, at: datetime) -> bool:
    """Record an operator warning as sent, with its audit event; False if a run recorded it first."""
    event = audit.event(incident.pk, action="deadline_warning", actor="deadline_watch", at=at, cause=warning)
    event.expires_at = record_expires_at(incident.detected_at)
    try:
        with transaction() as tx:
            tx.update(
                incident,
                actions=[IncidentItem.warnings_sent.add({warning})],
                condition=IncidentItem.pk.exists() & ~IncidentItem.warnings_sent.contains(warning),
            )
            tx.save(event, condition=AuditEvent.sk.does_not_exist())
    except TransactWriteError:
        return False
    return True


def release_warning(incident: IncidentItem, warning: str) -> None:
    try:
        incident.update(actions=[IncidentItem.warnings_sent.delete({warning})])
    except UpdateError:
        pass  # the claim stays: the operator misses one warning rather than getting two
