"""Requests the operator carries out itself: those for a site whose controller has delivery
`internal` (the platform's own data: its clients' accounts, its mailing lists, what rightsdesk holds).

The dispatcher moves such a request verified -> in_progress (rightsdesk.outbound.dispatch); that write, read
from the table's stream, runs `carry_out` (OwnRequestsFunction). What needs no judgement is done at
once and the request completed: access and portability (an export the subject opens with their
status token for 7 days, rightsdesk.own_data.exports), erasure, consent withdrawal, restriction and
objection. Rectifications and complaints wait for a person in the operator queue
(`rightsdesk requests list --route internal`, then `rightsdesk requests resolve`).

Every step may run twice (a stream batch is retried after a failure) and still act once: status
changes are conditional (rightsdesk.store.lifecycle), mails carry fixed ids (the notifier sends each id
once), ledger entries and flags are set, not toggled. Closing a request schedules the purge of its
personal fields (Rule.CLOSED_INTERNAL_REQUEST), except an erasure's: its closing write purges them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import TransactWriteError, UpdateError

from rightsdesk.audience import contacts, suppression
from rightsdesk.kernel import clock, deadlines, erasure_causes, retention
from rightsdesk.kernel.delivery_mode import DeliveryMode
from rightsdesk.kernel.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from rightsdesk.kernel.rights import RequestType
from rightsdesk.kernel.status import ANSWERED, Status, is_open
from rightsdesk.platform import config
from rightsdesk.platform.config import settings
from rightsdesk.routing import controller_lookup
from rightsdesk.store import audit, deletion, erasure_seeds, outbox, queries
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.requests import RequestItem
from rightsdesk.store.items.table import transaction
from rightsdesk.store.lifecycle import transition

if TYPE_CHECKING:
    from rightsdesk.platform.operator_identity import Actor

log = logging.getLogger(__name__)

INTERNAL = DeliveryMode.INTERNAL
SYSTEM = "rightsdesk"
EXPORT_DAYS = retention.keep_days(retention.Rule.EXPORT)  # what the mails and pages say
AUTOMATIC = frozenset(
    {
        RequestType.ACCESS,
        RequestType.PORTABILITY,
        RequestType.ERASURE,
        RequestType.CONSENT_WITHDRAWAL,
        RequestType.RESTRICTION,
        RequestType.OBJECTION,
    }
)
FOR_A_PERSON = frozenset({RequestType.RECTIFICATION, RequestType.COMPLAINT})
# Carried out in the operator's own stores too, when enabled connectors exist (docs/connectors.md).
THROUGH_CONNECTORS = frozenset({RequestType.ERASURE, RequestType.ACCESS, RequestType.PORTABILITY})
# A rectification reaches them too, once the operator approved it (`resolve`): never by itself.
APPROVED_THROUGH_CONNECTORS = THROUGH_CONNECTORS | {RequestType.RECTIFICATION}
# What the operator may correct beyond rightsdesk's own contact fields (name, locale): the
# subject-facing fields connectors declare `rectifiable`; a value is short text.
CONTACT_FIELDS = ("name", "locale")
MAX_CORRECTION_CHARS = 500
FLAGS = {RequestType.RESTRICTION: contacts.RESTRICTION, RequestType.OBJECTION: contacts.OBJECTION}
APPROVE, REJECT = "approve", "reject"


def authority() -> dict | None:
    """The operator's supervisory authority, as configured (template parameters), or None."""
    config = settings()
    if not config.authority_name:
        return None
    return {"name": config.authority_name, "url": config.authority_url or None, "email": config.authority_email or None}


def form_authority(site: str | None) -> dict | None:
    """The authority the request form's complaint note names: the operator's supervisory authority
    when the form is for a site of the operator's own (delivery internal); None for other sites,
    whose controllers answer to their own."""
    controller = controller_lookup.resolve_site(site) if site else None
    return authority() if controller is not None and controller.delivery == INTERNAL else None


def is_internal(controller_id: str) -> bool:
    controller = controller_lookup.get_controller(controller_id)
    return controller is not None and controller.delivery == INTERNAL


# ------------------------------------------------------------------ carrying out


def carry_out(request_id: str) -> str:
    """Act on a request the dispatcher just moved to in_progress; returns an outcome word."""
    from rightsdesk.own_data import subject_data  # the subject's holdings: not at the public API's cold start

    try:
        request = queries.load_request(request_id)
    except NotFound:
        return "gone"
    if request.status != Status.IN_PROGRESS.value:
        return f"already_{request.status}"  # a retry after the request was closed, or cancelled
    if not is_internal(request.controller_id):
        return "not_internal"
    subject_data.file_request(request)
    kind = RequestType(request.request_type)
    if kind in FOR_A_PERSON:
        _tell(request, "own_request_received", "received")
        return "queued_for_operator"
    if kind in THROUGH_CONNECTORS and _connectors_run():
        return _through_connectors(request, kind)
    _apply(request, kind, actor=SYSTEM)
    return "completed"


# ------------------------------------------------------------------ through the connectors


def _connectors_run() -> bool:
    from rightsdesk.connectors import execution

    return execution.enabled_connectors_exist()


def _through_connectors(request: RequestItem, kind: RequestType) -> str:
    """Erasure, access and portability reach the operator's own stores through the connectors
    (docs/connectors.md). An erasure waits the grace period first (ErasureGraceHours; the mail
    offers to cancel, the operator can `requests stop` it); the run's finish step then completes the
    request here (`after_execution`). Retried, it schedules or starts once."""
    from rightsdesk.connectors import execution

    current = execution.view(request.request_id)
    if current is not None and current.status in execution.ACTIVE:
        return "executing" if current.status == execution.RUNNING else "waiting_grace"
    # An erasure the lifecycle opened starts from the ids the account was known by; one for a
    # cancellation skips the grace period, which would break the terms' one business day.
    seed = erasure_seeds.seed(request.request_id)
    identities = erasure_seeds.identities_of(seed, request.email)
    grace = timedelta(hours=config.erasure_grace_hours())
    if seed is not None and seed.cause in erasure_causes.WITHOUT_GRACE:
        grace = timedelta()
    if kind is RequestType.ERASURE and grace:
        waiting = execution.schedule(
            request.request_id, not_before=clock.now() + grace, actor=SYSTEM, identities=identities
        )
        erase_after = clock.parse_iso(waiting.not_before) if waiting.not_before else clock.now() + grace
        _tell(request, "own_request_received", "grace", erase_after=int(erase_after.timestamp()))
        return "waiting_grace"
    try:
        execution.start(request.request_id, actor=SYSTEM, identities=identities)
    except Conflict as error:
        if error.code != "execution_running":
            raise
    return "executing"


def kind_runs_through_connectors(request: RequestItem) -> bool:
    return RequestType(request.request_type) in APPROVED_THROUGH_CONNECTORS


def after_execution(request_id: str) -> str:
    """The connectors' run of the request succeeded: do what `carry_out` does without connectors
    (rightsdesk's own data erased, the request completed, the answer mailed with the receipt's
    summary). Idempotent: a request no longer in progress is left as it is."""
    try:
        request = queries.load_request(request_id)
    except NotFound:
        return "gone"
    if request.status != Status.IN_PROGRESS.value:
        return f"already_{request.status}"
    kind = RequestType(request.request_type)
    if kind is RequestType.RECTIFICATION:
        # The operator approved it (resolve); the connectors wrote and read back the corrections.
        _close(request, Status.COMPLETED, actor=SYSTEM, at=clock.now(), receipt=True)
        return "completed"
    _apply(request, kind, actor=SYSTEM)
    return "completed"


def receipt_counts(request_id: str) -> dict[str, int]:
    """The sealed receipt's totals as whole numbers a mail message may carry (none: no receipt)."""
    from rightsdesk.connectors import receipts

    chain = receipts.entries(request_id)
    if not chain:
        return {}
    totals = receipts.summary([entry.body for entry in chain])
    names = ("connectors", "erased", "kept", "remaining", *(("rectified",) if "rectified" in totals else ()))
    counts = {f"receipt_{name}": int(totals[name]) for name in names}
    # A rectification's mail says where: per source, counts under the connector's id (no value).
    counts.update({f"{CORRECTED_PREFIX}{place['source']}": place["rectified"] for place in corrected_where(request_id)})
    return counts


CORRECTED_PREFIX = "receipt_rectified@"


def corrected_where(request_id: str) -> list[dict[str, Any]]:
    """Per source (connector id), how many records a rectification corrected, as its receipt
    records it: what the completion mail lists (read when the mail is made, never queued)."""
    from rightsdesk.connectors import receipts

    latest: dict[str, dict[str, Any]] = {}
    for entry in receipts.entries(request_id):
        body = entry.body
        if body.get("entry") == "connector" and body.get("action") == "rectify":
            latest[body["connector"]["id"]] = body
    return [
        {"source": source, "rectified": int(body["counts"].get("rectified", 0)), "found": int(body["counts"]["found"])}
        for source, body in sorted(latest.items())
        if body["result"] == "done" and body["counts"].get("rectified", 0) > 0
    ]


def _apply(request: RequestItem, kind: RequestType, *, actor: Actor, note: str | None = None) -> None:
    at = clock.now()
    source = f"request:{request.request_id}"
    if kind is RequestType.ERASURE:
        _erase(request, actor=actor, at=at, note=note)
        return
    if kind is RequestType.CONSENT_WITHDRAWAL:
        contacts.withdraw_consent(request.subject_hash, request.purposes or [], source=source, at=at)
    elif kind in FLAGS:
        contacts.limit_processing(request.subject_hash, FLAGS[kind], actor="subject", at=at, cause=request.request_id)
    # Access and portability need nothing done: the export is read from the table when opened.
    _close(request, Status.COMPLETED, actor=actor, at=at, note=note)


def _erase(request: RequestItem, *, actor: Actor, at: datetime, note: str | None) -> None:
    """Everything of the subject goes, but a keyed-hash suppression entry and the audit trail. The
    address alone stays until the answer's mail is done (after_answer), at most the delivered rule's
    hour: the mail is made from the table when it is sent, never from the queue. After a run of the
    connectors, the mail states the receipt's totals (counts only)."""
    from rightsdesk.own_data import subject_data  # the subject's holdings: not at the public API's cold start

    _tell(
        request,
        "own_request_answered",
        "completed",
        note=note,
        outcome=Status.COMPLETED.value,
        at=int(at.timestamp()),
        **receipt_counts(request.request_id),
    )
    holdings = subject_data.gather(request.subject_hash)
    suppression.suppress_erased(request.subject_hash, at)
    _forget_connector_exports(holdings.requests)
    # The move to in_progress is fixed for this request: retries key their audit events on it.
    erased = subject_data.erase(holdings, request=request, started_at=request.updated_at or at)
    log.info(
        "subject data erased",
        extra={
            "request_id": request.request_id,
            "deleted": erased.deleted,
            "purged": erased.purged,
            "held": erased.held,
        },
    )
    keeping_address = request.email is not None and request.personal_purged_at is None
    purge = (
        [
            RequestItem.name.remove(),
            RequestItem.details.remove(),
            *retention.schedule_actions(request, retention.Rule.DELIVERED_SUBJECT_DATA, at),
        ]
        if keeping_address
        else deletion.purge_actions(RequestItem, deletion.Cause.ERASURE, at)
    )
    transition(request, Status.COMPLETED, actor=actor, at=at, cause="erased", updates=purge)


def _forget_connector_exports(requests: list[RequestItem]) -> None:
    """What the connectors gathered for the subject's earlier access or portability requests goes
    with the erasure, not 7 days later."""
    exporting = [r for r in requests if RequestType(r.request_type) in (RequestType.ACCESS, RequestType.PORTABILITY)]
    if not exporting:
        return
    from rightsdesk.connectors import export_store

    for earlier in exporting:
        export_store.forget(earlier.request_id)


def _close(
    request: RequestItem,
    target: Status,
    *,
    actor: Actor,
    at: datetime,
    note: str | None = None,
    reason: str | None = None,
    receipt: bool = False,
) -> None:
    _tell(
        request,
        "own_request_answered",
        target.value,
        note=reason or note,
        outcome=target.value,
        at=int(at.timestamp()),
        **(receipt_counts(request.request_id) if receipt else {}),
    )
    transition(
        request,
        target,
        actor=actor,
        at=at,
        updates=retention.schedule_actions(request, retention.Rule.CLOSED_INTERNAL_REQUEST, at),
    )
    if kind_runs_through_connectors(request):
        from rightsdesk.connectors import execution

        execution.forget_identities(request.request_id)  # a parked run is not resumed any more


# ------------------------------------------------------------------ the operator queue


def resolve(
    request_id: str,
    decision: str,
    *,
    actor: Actor = "operator",
    note: str | None = None,
    reason: str | None = None,
    name: str | None = None,
    locale: str | None = None,
    fields: Mapping[str, str] | None = None,
) -> RequestItem:
    """An operator's decision on a request in the queue. Approving a rectification applies it to
    the contact (the request's `name`, or `name`/`locale` given here) and, where enabled connectors
    declare the fields rectifiable, starts their run (`fields`: further subject-facing fields ->
    corrected values); the run's end completes the request (`after_execution`). Approving a request
    the machine would have done (its carry-out failed) does it now. Rejecting needs a reason."""
    from rightsdesk.own_data import subject_data  # the subject's holdings: not at the public API's cold start

    request = _queued(request_id)
    kind = RequestType(request.request_type)
    if decision == REJECT:
        if not (reason or "").strip():
            raise InvalidInput("say why the request is rejected", fields={"reason": "required"})
        _close(request, Status.REJECTED, actor=actor, at=clock.now(), reason=reason.strip())
    elif decision != APPROVE:
        raise InvalidInput("approve or reject", fields={"decision": "invalid_choice"})
    elif kind is RequestType.RECTIFICATION and _connectors_rectify(name, locale, fields, request):
        changes = _corrections(name if name is not None else request.name, locale, fields, _declared_rectifiable())
        subject_data.file_request(request)
        _rectify_through_connectors(request, changes, actor=actor, note=note)
    elif kind is RequestType.RECTIFICATION:
        name = name if name is not None else request.name
        if fields:
            raise InvalidInput(
                "no enabled connector corrects these fields; rightsdesk itself corrects name and locale",
                fields={f"field.{key}": "not_rectifiable" for key in fields},
            )
        if name is None and locale is None:
            raise InvalidInput(
                "the request states no name; say what to correct (name or locale)", fields={"name": "required"}
            )
        subject_data.file_request(request)
        contacts.rectify(request.subject_hash, name=name, locale=locale, actor=actor, cause=request.request_id)
        _close(request, Status.COMPLETED, actor=actor, at=clock.now(), note=note)
    elif kind is RequestType.COMPLAINT:
        _close(request, Status.COMPLETED, actor=actor, at=clock.now(), note=note)
    else:
        subject_data.file_request(request)
        _apply(request, kind, actor=actor, note=note)
    return queries.load_request(request_id)


def _declared_rectifiable() -> set[str]:
    """The subject-facing fields enabled connectors declare rectifiable (empty: none)."""
    from rightsdesk.connectors import registry

    return {
        field
        for stored in registry.list_connectors()
        if stored.enabled and stored.definition is not None
        for field in (getattr(stored.definition, "rectifiable", None) or {})
    }


def _connectors_rectify(
    name: str | None, locale: str | None, fields: Mapping[str, str] | None, request: RequestItem
) -> bool:
    """Whether an approved correction goes through the connectors: an enabled one declares one of
    its fields. Otherwise rightsdesk's own contact alone is corrected, as without connectors."""
    if not _connectors_run():
        return False
    asked = set(fields or {}) | {key for key, value in (("name", name or request.name), ("locale", locale)) if value}
    return bool(asked & _declared_rectifiable())


def _corrections(
    name: str | None, locale: str | None, fields: Mapping[str, str] | None, declared: set[str]
) -> dict[str, str]:
    """The approved corrections as subject-facing field -> value, each field rightsdesk's contact
    holds (name, locale) or an enabled connector declares rectifiable; 4xx for anything else."""
    changes = {key: value for key, value in (("name", name), ("locale", locale)) if value is not None}
    problems: dict[str, str] = {}
    for key, value in (fields or {}).items():
        if key in CONTACT_FIELDS:
            problems[f"field.{key}"] = f"give it as --{key}"
        elif key not in declared:
            problems[f"field.{key}"] = "not_rectifiable"
        else:
            changes[key] = value
    for key, value in changes.items():
        text = value.strip() if isinstance(value, str) else ""
        if not text or len(text) > MAX_CORRECTION_CHARS or any(ord(ch) < 32 for ch in text):
            problems.setdefault(f"field.{key}", f"text of 1 to {MAX_CORRECTION_CHARS} characters, one line")
        else:
            changes[key] = text
    if "locale" in changes and changes["locale"] not in contacts.SUPPORTED_LOCALES:
        problems["field.locale"] = "invalid_choice"  # the languages rightsdesk speaks, as for the contact
    if problems:
        named = ", ".join(sorted(key.removeprefix("field.") for key in problems))
        raise InvalidInput(f"these corrections cannot be applied: {named}", fields=problems)
    if not changes:
        raise InvalidInput(
            "the request states no name; say what to correct (name, locale or --field)", fields={"name": "required"}
        )
    return changes


def _rectify_through_connectors(
    request: RequestItem, changes: dict[str, str], *, actor: Actor, note: str | None
) -> None:
    """rightsdesk's own contact is corrected at once (if the subject is one); the connectors that
    declare a field write it where the data lives, through a run (the corrections sealed with its
    identities, never in a message); the run's end completes the request and mails what was corrected
    where. The operator's note waits, stored for that mail."""
    from rightsdesk.connectors import execution

    if "name" in changes or "locale" in changes:
        try:
            contacts.rectify(
                request.subject_hash,
                name=changes.get("name"),
                locale=changes.get("locale"),
                actor=actor,
                cause=request.request_id,
            )
        except NotFound:
            pass  # not on rightsdesk's lists: the product's stores are corrected all the same
    if note and note.strip():
        mail_id = f"own-{request.request_id}-{Status.COMPLETED.value}"
        request.update(actions=[RequestItem.mail_note.set(note.strip()), RequestItem.mail_note_for.set(mail_id)])
    execution.start(request.request_id, actor=actor, changes=changes)


def extend(request_id: str, until: datetime, *, reason: str, actor: Actor = "operator") -> RequestItem:
    """Push the due date while it has not passed, with the reason the subject is told (in their
    language, with the new date); at most two months more in all."""
    from rightsdesk.routing import deadline_watch  # not at the public API's cold start

    request = queries.load_request(request_id)
    if not is_internal(request.controller_id):
        raise NotFound(f"no request {request_id} in the operator queue")
    if not is_open(request.status) or request.verified_at is None or request.due_at is None:
        raise Conflict("only an open, verified request has a due date to extend", code="not_extendable")
    if not (reason or "").strip():
        raise InvalidInput("an extension needs a reason", fields={"reason": "required"})
    now = clock.now()
    until = deadlines.extended_due(until, due=request.due_at, verified_at=request.verified_at, now=now)
    event = audit.event(request.pk, action="due_extended", actor=actor, at=now, cause="due_extended")
    try:
        with transaction() as tx:
            tx.update(
                request,
                actions=[*deadline_watch.extension_actions(until), RequestItem.updated_at.set(now)],
                condition=(RequestItem.status == request.status) & (RequestItem.due_at == request.due_at),
            )
            tx.save(event, condition=AuditEvent.sk.does_not_exist())
    except TransactWriteError as error:
        raise IllegalTransition("the request changed meanwhile; reload it and try again") from error
    request.refresh(consistent_read=True)
    _tell(
        request,
        "own_request_answered",
        f"extended-{int(until.timestamp())}",
        note=reason.strip(),
        outcome="extended",
        at=int(now.timestamp()),
    )
    return request


def _queued(request_id: str) -> RequestItem:
    request = queries.load_request(request_id)
    if not is_internal(request.controller_id):
        raise NotFound(f"no request {request_id} in the operator queue (its site's controller answers it)")
    if request.status != Status.IN_PROGRESS.value:
        raise Conflict(f"a {request.status} request is not waiting in the operator queue", code="not_in_queue")
    return request


# ------------------------------------------------------------------ telling the subject


def authority_context() -> dict:
    """The supervisory authority as a subject's mail names it (Art. 77); empty if none is configured
    (the mail then states the general right)."""
    found = authority()
    if not found:
        return {}
    return {"authority_name": found["name"], "authority_url": found["url"], "authority_email": found["email"]}


def received_context(request: RequestItem, erase_after: int | None = None) -> dict:
    """What the `own_request_received` mail says (made when it is sent, rightsdesk.outbound.mail_kinds);
    for an erasure waiting out its grace period, when it will run (`erase_after`, epoch seconds)."""
    context = {
        "request_id": request.request_id,
        "request_type": request.request_type,
        "due_at": clock.isoformat(request.due_at or clock.now()),
        "erase_after": clock.isoformat(datetime.fromtimestamp(erase_after, timezone.utc)) if erase_after else None,
    }
    if request.request_type == RequestType.COMPLAINT.value:
        context.update(authority_context())
    return context


def overdue_context(request: RequestItem) -> dict:
    """What the `own_request_overdue` mail says: when the answer was due, and the right to complain."""
    return {
        "request_id": request.request_id,
        "request_type": request.request_type,
        "due_at": clock.isoformat(request.due_at) if request.due_at else None,
        **authority_context(),
    }


def _answered(
    request: RequestItem, outcome: Status | None, at: datetime, *, note: str | None = None, reason: str | None = None
) -> dict:
    context = {
        "request_id": request.request_id,
        "request_type": request.request_type,
        "outcome": outcome.value if outcome else None,
        "note": (note or "").strip() or None,
        "reason": reason,
        "due_at": clock.isoformat(request.due_at) if request.due_at else None,
        "purposes": list(request.purposes or []),
    }
    if outcome is Status.COMPLETED and request.request_type in (
        RequestType.ACCESS.value,
        RequestType.PORTABILITY.value,
    ):
        context["export_until"] = clock.isoformat(at + retention.keep_for(retention.Rule.EXPORT))
    return context


def answered_context(
    request: RequestItem, outcome: str, at: datetime, text: str | None, receipt: dict[str, int] | None = None
) -> dict:
    """What the `own_request_answered` mail says: `outcome` completed | rejected | extended, and the
    operator's note (completed) or reason (rejected, extended), as stored for this mail; after the
    connectors ran, the receipt's totals (`receipt`: receipt_connectors, receipt_erased, ...)."""
    closed = Status(outcome) if outcome in ANSWERED else None
    completed = outcome == Status.COMPLETED.value
    context = _answered(request, closed, at, note=text if completed else None, reason=None if completed else text)
    # Per source, from the message's counts: the notifier reads no receipt itself.
    corrected = [
        {"source": name.removeprefix(CORRECTED_PREFIX), "rectified": int(count)}
        for name, count in sorted((receipt or {}).items())
        if name.startswith(CORRECTED_PREFIX) and completed
    ]
    return {**context, "outcome": outcome, "receipt": dict(receipt) if receipt else None, "corrected": corrected}


def _tell(request: RequestItem, kind: str, step: str, *, note: str | None = None, **ids: str | int) -> None:
    """Queue a mail to the subject while their address is held; its id is fixed per request and step,
    so a retried step queues the same mail and the notifier sends it once. The message names the
    request only: the notifier reads the address, and the note stored here for this mail, when it sends."""
    if not request.email or request.personal_purged_at is not None:
        return
    mail_id = f"own-{request.request_id}-{step}"
    if note:
        request.update(actions=[RequestItem.mail_note.set(note), RequestItem.mail_note_for.set(mail_id)])
    outbox.enqueue_mail(kind, mail_id=mail_id, request_id=request.request_id, **ids)


def after_answer(request_id: str) -> bool:
    """An erasure's completion answer is done (sent, or given up on): the address it was kept for
    goes now, whether or not the closing write has happened yet (the answer is queued first, so the
    notifier may be quicker). False for any other request, or if it is purged already."""
    try:
        request = queries.load_request(request_id)
    except NotFound:
        return False
    erasing = (Status.IN_PROGRESS.value, Status.COMPLETED.value)
    if (
        request.request_type != RequestType.ERASURE.value
        or request.status not in erasing
        or request.personal_purged_at is not None
    ):
        return False
    at = clock.now()
    try:
        request.update(
            actions=deletion.purge_actions(RequestItem, deletion.Cause.ERASURE, at),
            condition=RequestItem.status.is_in(*erasing) & deletion.NOT_HELD,
        )
    except UpdateError as error:
        if deletion.conditional_failure(error):
            return False
        raise
    return True
