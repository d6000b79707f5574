"""Every kind of mail we send: what its MailQueue message names, and how the notifier makes the mail.

A MailQueue message is `{"mail_id", "kind", "ids"}` (rightsdesk.store.outbox): ids and short words only,
never an address, a name, typed text, a code or a token. The notifier looks the kind up here when
it sends; the kind's resolver reads the recipient and everything the mail says from the table at
that moment, so a purge also empties what a retry or a dead-letter redrive would send. A resolver
that finds nothing to send (the record is gone, purged, or has moved on) returns None: the mail is
dropped and counted (the purge won), never retried. Secrets a subject must receive (the
verification code, the status token) are derived with the stack's key at that moment
(rightsdesk.platform.subject_secrets). Text someone typed for the mail (a controller's reason, the
operator's note) waits on the request, purged with its personal fields (RequestItem.mail_note).

Adding a mail: its template (rightsdesk.render.mail, notice_mail or own_mail), the ids its message
names (outbox.MAIL_IDS), one entry in KINDS (for a mail about a request to its subject or to its
controller's contact, `subject_request_mail` and `controller_request_mail` build the entry), and
`outbox.enqueue_mail(kind, mail_id=..., **ids)` where it happens.

Heavy or far modules (breaches, policies, own_requests, ...) are imported inside the resolvers:
the notifier loads this module, and a kind loads what it makes its mail from only when it sends one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import NotFound
from rightsdesk.kernel.status import AWAITING_DELIVERY, Status
from rightsdesk.platform import subject_secrets
from rightsdesk.platform.config import settings
from rightsdesk.routing import controller_lookup
from rightsdesk.store import outbox, queries
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.requests import ChallengeItem, RequestItem

Ids = dict[str, Any]  # the message's ids: short words (outbox.ID) and whole numbers


@dataclass(frozen=True)
class Mail:
    """One mail, made at send time: the only place its recipient's address appears."""

    to: str
    template: str
    locale: str
    context: dict[str, Any]
    list_name: str | None = None  # an optional list: the mail carries an unsubscribe link
    contact: str | None = None  # the contact's keyed email hash, for that link
    # SES message tags: the kind always; a request id for a mail whose bounce matters (SesEventsFunction)
    tags: dict[str, str] = field(default_factory=dict)


# What became of a mail, as the notifier reports it to a kind's `record_outcome`.
SENT = "sent"  # SES accepted it
SUPPRESSED = "suppressed"
FAILED = "failed"  # the last attempt failed: the message goes to the dead-letter queue
DROPPED = "dropped"  # nothing to send any more (gone, purged, moved on)


@dataclass(frozen=True)
class MailKind:
    name: str
    resolve: Callable[[Ids, str], Mail | None]  # (ids, mail id) -> the mail, or None: nothing to send
    # What the outcome changes elsewhere (a breach notice, a request delivered by email); True if it
    # changed anything. Runs after the idempotent send, so a redelivered message retries only this.
    record_outcome: Callable[[Ids, str], bool] | None = None
    suppressible: bool = False  # notices we start, to many: a bounce or complaint stops them
    # Made from the subject's personal data (their address, or what they wrote): once the request is
    # purged there is nothing to send. Mails about a request to its controller without such data
    # (a deadline notice, a failure report) still go after the purge.
    personal: bool = False

    @property
    def needs(self) -> tuple[str, ...]:
        """The ids every message of this kind names (outbox.MAIL_IDS, which checks them when queued)."""
        return outbox.MAIL_IDS[self.name]


# ------------------------------------------------------------------ reading what a mail needs


def _request(ids: Ids) -> RequestItem | None:
    try:
        return queries.load_request(str(ids["request_id"]))
    except NotFound:
        return None


def _subject_address(request: RequestItem) -> str | None:
    """The subject's address while it is kept (queries.personal_fields: none once purged or due)."""
    return queries.personal_fields(request)["email"]


def note_for(request: RequestItem, mail_id: str) -> str | None:
    """The text typed for this mail (a reason, a note), if the request still holds it for this mail."""
    if request.mail_note_for != mail_id or queries.personal_fields(request)["email"] is None:
        return None
    return request.mail_note or None


def _iso(value: datetime | None) -> str | None:
    return clock.isoformat(value) if value is not None else None


def _base() -> str:
    """Links in subject mail; relative ones are made absolute with PUBLIC_BASE_URL when rendered."""
    return settings().public_base_url


def _status_url(request: RequestItem, *, with_token: bool = False) -> str:
    """The request's status page, in the subject's language (with the token in the one mail that carries it)."""
    url = f"{_base()}/status/{request.request_id}?"
    if (
        with_token
        and request.verified_code_hash
        and subject_secrets.token_matches(request.request_id, request.verified_code_hash, request.status_token_hash)
    ):
        url += "token=" + subject_secrets.status_token(request.request_id, request.verified_code_hash) + "&"
    return f"{url}lang={request.locale}"


def request_context(request: RequestItem, ids: Ids, mail_id: str) -> dict[str, Any]:
    """What a mail about a request tells its subject: its type, status and due date, the reason
    typed for this mail (if any), the status page; and the message's own words (`ids`)."""
    return {
        **ids,
        "request_id": request.request_id,
        "request_type": request.request_type,
        "status": ids.get("status") or request.status,
        "due_at": _iso(request.due_at),
        "reason": note_for(request, mail_id),
        "status_url": _status_url(request),
    }


# ------------------------------------------------------------------ mail to a request's subject


def subject_request_mail(
    template: str, *, context: Callable[[RequestItem, Ids, str], dict] = request_context
) -> MailKind:
    """A mail to the subject of a request, while their address is kept; `context` builds what it says."""

    def resolve(ids: Ids, mail_id: str) -> Mail | None:
        request = _request(ids)
        address = _subject_address(request) if request is not None else None
        if address is None:
            return None
        return Mail(to=address, template=template, locale=request.locale, context=context(request, ids, mail_id))

    return MailKind(template, resolve, personal=True)


def _verification_code(ids: Ids, mail_id: str) -> Mail | None:
    request = _request(ids)
    if request is None or request.status != Status.IDENTITY_UNVERIFIED.value:
        return None  # verified, cancelled or expired meanwhile: the code is no use any more
    address = _subject_address(request)
    challenge = retention.live_item(ChallengeItem, request.pk, ChallengeItem.SK, consistent_read=True)
    if (
        address is None
        or challenge is None
        or not subject_secrets.code_matches(request.request_id, challenge.code_hash)
    ):
        return None
    code = subject_secrets.verification_code(request.request_id)
    return Mail(
        to=address,
        template="verification_code",
        locale=request.locale,
        context={
            "code": code,
            "verify_url": f"{_base()}/verify/{request.request_id}?code={code}&lang={request.locale}",
            "request_type": request.request_type,
            "expires_minutes": int(retention.keep_for(retention.Rule.VERIFICATION_CODE).total_seconds() // 60),
        },
    )


def _verified_context(request: RequestItem, ids: Ids, mail_id: str) -> dict:
    # The one mail that carries the status token: made again here, from the stored code hash.
    return {
        "request_type": request.request_type,
        "due_at": _iso(request.due_at),
        "status_url": _status_url(request, with_token=True),
    }


def _own_received_context(request: RequestItem, ids: Ids, mail_id: str) -> dict:
    from rightsdesk.own_data import own_requests

    erase_after = int(ids["erase_after"]) if ids.get("erase_after") else None
    context = own_requests.received_context(request, erase_after)
    if erase_after:  # the erasure's grace period: the status page (with its token) cancels it
        context["status_url"] = _status_url(request, with_token=True)
    return context


def _own_answered_context(request: RequestItem, ids: Ids, mail_id: str) -> dict:
    from rightsdesk.own_data import own_requests

    at = datetime.fromtimestamp(int(ids["at"]), timezone.utc)
    receipt = {name: int(value) for name, value in ids.items() if name.startswith("receipt_")}
    return own_requests.answered_context(request, str(ids["outcome"]), at, note_for(request, mail_id), receipt)


def _own_overdue_context(request: RequestItem, ids: Ids, mail_id: str) -> dict:
    from rightsdesk.own_data import own_requests

    return own_requests.overdue_context(request)


def _own_answer_outcome(ids: Ids, outcome: str) -> bool:
    """An erasure's completion answer is the last thing its address was kept for: it goes once the
    mail is done (sent, suppressed, dropped, or given up on)."""
    from rightsdesk.own_data import own_requests

    if ids.get("outcome") != Status.COMPLETED.value:
        return False
    return own_requests.after_answer(str(ids["request_id"]))


# ------------------------------------------------------------------ mail to a controller's contact


def _controller_of(request: RequestItem) -> ControllerItem | None:
    return controller_lookup.get_controller(request.controller_id)


def controller_request_mail(
    template: str,
    *,
    context: Callable[[RequestItem, ControllerItem, Ids], dict] | None = None,
    record_outcome: Callable[[Ids, str], bool] | None = None,
    sendable: Callable[[RequestItem], bool] = lambda request: True,
    tag_request: bool = False,
    personal: bool = False,
) -> MailKind:
    """A mail about a request to its controller's privacy contact, in the controller's language.
    `context` defaults to the request's facts (payloads.request_mail) and the message's words."""

    def resolve(ids: Ids, mail_id: str) -> Mail | None:
        from rightsdesk.routing import payloads

        request = _request(ids)
        if request is None or not sendable(request):
            return None
        controller = _controller_of(request)
        if controller is None:
            return None
        made = context(request, controller, ids) if context else {**ids, **payloads.request_mail(request, controller)}
        return Mail(
            to=controller.contact_email,
            template=template,
            locale=controller.locale,
            context=made,
            tags={"request_id": request.request_id} if tag_request else {},
        )

    return MailKind(template, resolve, record_outcome, personal=personal)


def _forwarded_context(request: RequestItem, controller: ControllerItem, ids: Ids) -> dict:
    from rightsdesk.routing import payloads

    return payloads.forwarded_mail(request, controller)


def _notice_context(request: RequestItem, controller: ControllerItem, ids: Ids) -> dict:
    from rightsdesk.routing import payloads

    return payloads.notice_mail(request, controller, notice=str(ids["notice"]))


def _failed_context(request: RequestItem, controller: ControllerItem, ids: Ids) -> dict:
    from rightsdesk.routing import payloads

    return payloads.failed_mail(request, controller, attempts=int(ids["attempts"]), cause=str(ids["cause"]))


def _awaiting_email_delivery(request: RequestItem) -> bool:
    # A cancelled request was purged; a delivered one was sent already. A failed one is sent on a redrive.
    return request.status in AWAITING_DELIVERY and _subject_address(request) is not None


def _forwarded_outcome(ids: Ids, outcome: str) -> bool:
    """Email delivery is done when SES accepted the mail, failed when it never went."""
    from rightsdesk.routing import delivery

    return delivery.record_email_outcome(str(ids["request_id"]), outcome)


def _webhook_disabled(ids: Ids, mail_id: str) -> Mail | None:
    from rightsdesk.routing import payloads

    controller = controller_lookup.get_controller(str(ids["controller_id"]))
    if controller is None:
        return None
    return Mail(
        to=controller.contact_email,
        template="webhook_disabled",
        locale=controller.locale,
        context=payloads.webhook_disabled_mail(controller),
    )


# ------------------------------------------------------------------ notices (breach, policy, lists)


def _breach_notice(ids: Ids, mail_id: str) -> Mail | None:
    from rightsdesk.notices import breaches

    found = breaches.notice_mail(str(ids["incident_id"]), str(ids["notice"]))
    if found is None:
        return None
    address, locale, template, made = found
    return Mail(to=address, template=template, locale=locale, context=made)


def _breach_notice_outcome(ids: Ids, outcome: str) -> bool:
    from rightsdesk.notices import breaches

    if outcome == DROPPED:
        return False
    return breaches.record_outcome(str(ids["incident_id"]), str(ids["notice"]), outcome)


def _breach_warning(ids: Ids, mail_id: str) -> Mail | None:
    from rightsdesk.notices import breach_watch

    address = settings().operator_email
    made = breach_watch.warning_context(str(ids["incident_id"]), str(ids["warning"]))
    if not address or made is None:
        return None
    return Mail(to=address, template="breach_deadline_warning", locale="en", context=made)


def _overdue_digest(ids: Ids, mail_id: str) -> Mail | None:
    from rightsdesk.routing import deadline_watch

    address = settings().operator_email
    rows = deadline_watch.digest_rows(ids)
    if not address or not rows:
        return None
    return Mail(
        to=address,
        template="requests_overdue_digest",
        locale="en",
        context={"requests": rows, "days": int(ids["days"])},
    )


def _policy(ids: Ids, mail_id: str) -> Mail | None:
    from rightsdesk.notices import policies

    found = policies.recipient_mail(
        str(ids["doc"]),
        str(ids["version"]),
        controller_id=ids.get("controller_id"),
        contact=ids.get("contact"),
        list_name=ids.get("list"),
    )
    if found is None:
        return None
    address, locale, template, made = found
    return Mail(
        to=address,
        template=template,
        locale=locale,
        context=made,
        list_name=ids.get("list"),
        contact=ids.get("contact") if ids.get("list") else None,
    )


def _newsletter(ids: Ids, mail_id: str) -> Mail | None:
    from rightsdesk.audience import contacts, newsletter

    made = newsletter.issue_context(str(ids["issue"]))
    contact = contacts.get(str(ids["contact"]))
    if made is None or contact is None or not contact.email:
        return None
    return Mail(
        to=contact.email,
        template="newsletter",
        locale=contact.locale,
        context=made,
        list_name=str(ids["list"]),
        contact=str(ids["contact"]),
    )


def _account_warning(ids: Ids, mail_id: str) -> Mail | None:
    """The inactivity warning, while the account is still warned for that period (activity since,
    a cancellation or the erasure drop it)."""
    from rightsdesk.lifecycle import accounts

    made = accounts.warning_mail(str(ids["account_id"]), str(ids["period"]))
    if made is None:
        return None
    to, locale, context = made
    return Mail(to=to, template="account_inactivity_warning", locale=locale, context=context)


# ------------------------------------------------------------------ the registry


def _kinds(*kinds: MailKind) -> dict[str, MailKind]:
    made = {kind.name: kind for kind in kinds}
    if set(made) != set(outbox.MAIL_IDS):  # a kind nobody can queue, or a message nobody can send
        raise RuntimeError(f"mail kinds and outbox.MAIL_IDS differ: {sorted(set(made) ^ set(outbox.MAIL_IDS))}")
    return made


KINDS: dict[str, MailKind] = _kinds(
    # to the subject (templates/mail, templates/operator/mail)
    MailKind("verification_code", _verification_code, personal=True),
    subject_request_mail("request_verified", context=_verified_context),
    subject_request_mail("status_changed"),
    subject_request_mail("due_extended"),  # the new due date and the reason (Art. 12(3))
    subject_request_mail("own_request_overdue", context=_own_overdue_context),
    subject_request_mail("own_request_received", context=_own_received_context),
    MailKind(
        "own_request_answered",
        subject_request_mail("own_request_answered", context=_own_answered_context).resolve,
        _own_answer_outcome,
        personal=True,
    ),
    # to a controller's privacy contact (templates/mail)
    controller_request_mail(
        "request_forwarded",
        context=_forwarded_context,
        record_outcome=_forwarded_outcome,
        sendable=_awaiting_email_delivery,
        tag_request=True,
        personal=True,
    ),
    controller_request_mail("request_notice", context=_notice_context),
    controller_request_mail("delivery_failed", context=_failed_context),
    MailKind("webhook_disabled", _webhook_disabled),
    # notices (templates/notices, templates/operator/mail)
    MailKind("breach_notice", _breach_notice, _breach_notice_outcome, suppressible=True),
    MailKind("breach_deadline_warning", _breach_warning),
    MailKind("requests_overdue_digest", _overdue_digest),
    MailKind("policy", _policy, suppressible=True),
    MailKind("newsletter", _newsletter, suppressible=True),
    # to an account's holder (templates/operator/mail)
    # made from the account, not a request: nothing of a request's purge applies (an erasure deletes the account)
    MailKind("account_inactivity_warning", _account_warning),
)


def kind(name: str) -> MailKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown mail kind {name!r}") from None
