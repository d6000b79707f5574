"""Subject intake: submit a request, prove control of the address, follow or cancel it.

The answer to a submission is the same whether or not the address is known anywhere (no
enumeration). Codes and status tokens are stored only as keyed hashes and compared in
constant time; a code lives 15 minutes and allows five attempts.

Verifying is safe to retry: the status token is derived (hashing.derived_token) from the request id
and the code's keyed hash, which the request keeps, so if the answer to a successful verify is lost
(a dropped connection, an API that died before answering) the same code gives the same answer
again for the code's lifetime after verification. Wrong codes on that path are counted like the
code's own attempts and answered as any request that is not waiting for a code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from pynamodb.exceptions import TransactWriteError, UpdateError

from rightsdesk.intake import guard, subjects
from rightsdesk.kernel import clock, deadlines, retention
from rightsdesk.kernel.errors import (
    CodeExpired,
    Conflict,
    IllegalTransition,
    InvalidCode,
    NotFound,
    RateLimited,
    SiteUnavailable,
    TooManyAttempts,
    Unauthorized,
    UnknownSite,
)
from rightsdesk.kernel.status import BEFORE_ROUTING, Status, is_open
from rightsdesk.platform import hashing, overlap, subject_secrets
from rightsdesk.routing import controller_lookup
from rightsdesk.store import audit, limits, outbox, request_view
from rightsdesk.store.items.requests import ChallengeItem, RequestItem, SubjectCounterItem
from rightsdesk.store.items.table import get_many, transaction
from rightsdesk.store.lifecycle import listing_key, transition
from rightsdesk.store.queries import load_request  # noqa: F401 (intake.load_request: the public API's name for it)

if TYPE_CHECKING:
    from rightsdesk.intake.forms import Submission, VerifyInput  # noqa: F401

log = logging.getLogger(__name__)

MAX_CODE_ATTEMPTS = 5


# The form models (rightsdesk.intake.forms) are pydantic classes, about 20 ms to build, which
# only the submit and verify routes need: they are built on first use, not when the public API
# starts. `submissions.Submission` stays their name (the API's route signatures are resolved lazily).
_FORM_MODELS = frozenset({"Submission", "VerifyInput"})


def __getattr__(name: str):
    if name in _FORM_MODELS:
        from rightsdesk.intake import forms

        return getattr(forms, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Submitted:
    request_id: str
    status: str


@dataclass(frozen=True)
class Verified:
    request_id: str
    status: str
    status_token: str
    due_at: datetime
    locale: str
    # The answer given before, to a retry (_verify_again): the subject sees the same; we log no new verification.
    repeated: bool = field(default=False, compare=False)


def submit(submission: Submission, *, locale: str, source: str | None = None, gpc: bool = False) -> Submitted:
    """Store the request and mail its code. `source` is the caller's IP address (rightsdesk.store.limits):
    over its per-minute limit the submission is refused (RateLimited); over the address's hourly
    limit of codes it is answered as usual, but nothing is stored and no mail goes. `gpc`: the
    submission carried a Global Privacy Control signal (rightsdesk.kernel.gpc); only a flag is kept,
    and the withdrawal it stands for waits for the verification (rightsdesk.audience.gpc)."""
    # As this container read it within the last minute: a site's owner and whether it takes
    # requests change rarely, and a request taken in that minute is still delivered as the
    # controller is then (the dispatcher reads it fresh).
    controller = controller_lookup.resolve_site(submission.site, recent=True)
    if controller is None:
        raise UnknownSite("no controller is registered for that site", fields={"site": "unknown_site"})
    if not controller_lookup.accepts_submissions(controller):
        raise SiteUnavailable(
            "this site takes no requests through this service at the moment; contact it directly",
            fields={"site": "site_unavailable"},
        )
    now = clock.now()
    request_id = hashing.new_id("dsr")
    subject_hash = hashing.email_hash(submission.email)
    # Derived with the stack's key, so the notifier makes it again when it sends the mail: the
    # queue message names the request only (rightsdesk.outbound.mail_kinds).
    code = subject_secrets.verification_code(request_id)
    locale = submission.locale or locale
    pk = RequestItem.key(request_id)
    request_expires = retention.expires_at(retention.Rule.UNVERIFIED_REQUEST, now)
    code_expires = retention.expires_at(retention.Rule.VERIFICATION_CODE, now)
    request = RequestItem(
        pk,
        RequestItem.SK,
        request_id=request_id,
        controller_id=controller.controller_id,
        site=submission.site,
        request_type=submission.type.value,
        status=Status.IDENTITY_UNVERIFIED.value,
        locale=locale,
        relationship=submission.relationship.value,
        purposes=[p.value for p in submission.purposes] or None,
        gpc=True if gpc else None,
        email=submission.email,
        name=submission.name,
        details=submission.details,
        subject_hash=subject_hash,
        created_at=now,
        updated_at=now,
        expires_at=request_expires,
        gsi1pk=f"CTRL#{controller.controller_id}",
        gsi1sk=listing_key(Status.IDENTITY_UNVERIFIED.value, now, request_id),
        **retention.schedule(retention.Rule.UNVERIFIED_REQUEST, now, pk, RequestItem.SK),
    )
    challenge = ChallengeItem(
        pk,
        ChallengeItem.SK,
        code_hash=hashing.keyed_hash("code", code),
        attempts=0,
        created_at=now,
        expires_at=code_expires,
        **retention.schedule(retention.Rule.VERIFICATION_CODE, now, pk, ChallengeItem.SK),
    )
    created = audit.event(pk, action="submitted", actor="subject", at=now, to_status=Status.IDENTITY_UNVERIFIED.value)
    if not _store_within_limits([request, challenge, created], subject_hash, source, now):
        # The same answer as a stored request's, for an id that exists nowhere: it tells nothing
        # about the address (the form tells subjects to wait an hour if no code arrives).
        return Submitted(request_id=request_id, status=Status.IDENTITY_UNVERIFIED.value)
    outbox.enqueue_mail("verification_code", request_id=request_id, mail_id=f"verify-{request_id}")
    return Submitted(request_id=request_id, status=Status.IDENTITY_UNVERIFIED.value)


def _store_within_limits(items: list, subject_hash: str, source: str | None, now: datetime) -> bool:
    """Spend the source's limit, then write the new request's items and spend the address's limit
    in one transaction. False if the address had its codes for this hour: nothing was stored.
    Raises RateLimited, before anything is written, if the source is over its limit, whatever the
    address: the source's own submissions alone decide that answer.

    The source's counter is spent by a write of its own: many callers share a source (a NAT, an
    office), and one item in many concurrent transactions is a conflict hotspot in DynamoDB
    (TransactionConflict), where a plain conditional ADD just serializes. The address's counter is
    one subject's, so it rides in the transaction: over its limit, nothing is stored."""
    by_address = limits.codes_per_address()
    if source:
        by_source = limits.submissions_per_source()
        if not limits.spend(by_source, limits.source_key(source), now):
            raise RateLimited(
                "too many submissions from your network; please wait a minute",
                retry_after=limits.retry_after(by_source, now),
            )
    try:
        with transaction() as tx:
            for item in items:  # puts come before updates in the transaction (limits.refused_in)
                tx.save(item, condition=type(item).pk.does_not_exist())
            limits.spend_in(tx, by_address, limits.address_key(subject_hash), now)
    except TransactWriteError as error:
        if not limits.refused_in(error, {len(items): by_address}):
            raise
        # Counts only, for the operator (a metric filter can alarm on it): no address, no id.
        log.info("submission over the address's hourly limit of codes: nothing stored, no mail")
        return False
    return True


def _spend_attempt(request: RequestItem) -> tuple[ChallengeItem, int]:
    """Count the attempt before comparing, atomically, so parallel guesses cannot exceed the limit.
    The write answers with the challenge (its code hash), so nothing reads it first. Refused, by
    its condition, for a code that is gone or past its 15 minutes (CodeExpired) or out of attempts
    (TooManyAttempts); only then one read tells which."""
    challenge = ChallengeItem(request.pk, ChallengeItem.SK)
    live = ChallengeItem.expires_at.does_not_exist() | (ChallengeItem.expires_at > clock.epoch())
    try:
        challenge.update(
            actions=[ChallengeItem.attempts.add(1)],
            condition=ChallengeItem.pk.exists() & live & (ChallengeItem.attempts < MAX_CODE_ATTEMPTS),
        )
    except UpdateError as error:
        from rightsdesk.store import deletion  # an expired or used-up code only: not at every start

        if not deletion.conditional_failure(error):
            raise
        if retention.live_item(ChallengeItem, request.pk, ChallengeItem.SK, consistent_read=True) is None:
            raise CodeExpired("this code has expired; please submit your request again") from None
        raise TooManyAttempts("too many wrong codes; please submit your request again") from None
    return challenge, int(challenge.attempts)


def verify(request_id: str, code: str, *, source: str | None = None) -> Verified:
    """Four AWS calls when the code is right (docs/benchmarks.md, "AWS calls per operation"), three
    waits: read the request; read its counters (the wrong-code budgets, the subject's yearly count)
    in one call while spending an attempt (the write returns the code's hash); the transition, in
    one transaction. The routing and the confirmation follow from the table's stream
    (rightsdesk.routing.follow_up)."""
    request = load_request(request_id)
    if request.status != Status.IDENTITY_UNVERIFIED.value:
        return _verify_again(request, code)
    now = clock.now()
    # Both only need the request. An attempt spent on a guesser whose budget is used up costs a
    # guesser its own request's attempts, never anyone else's.
    (guessers, counter), (challenge, attempts) = overlap.both(
        lambda: _read_counters(request, source, now), lambda: _spend_attempt(request)
    )
    if not hashing.matches("code", code, challenge.code_hash):
        _count_wrong_code(guessers)
        left = MAX_CODE_ATTEMPTS - attempts
        raise InvalidCode(
            "that code is not right" + (f"; {left} attempts left" if left else ""),
            fields={"code": "invalid_code"},
        )
    # Its deadline setting only: a controller record this container read within the last minute will do.
    controller = controller_lookup.recent_controller(request.controller_id)
    due = deadlines.due_at(
        now,
        request_type=request.request_type,
        relationship=request.relationship,
        sla_days=controller.sla_days if controller else None,
    )
    token = _status_token(request_id, challenge.code_hash)
    skeleton_expires = retention.expires_at(retention.Rule.SKELETON, now)
    updates = [
        RequestItem.status_token_hash.set(hashing.keyed_hash("status_token", token)),
        RequestItem.verified_code_hash.set(challenge.code_hash),
        RequestItem.verify_retries.set(attempts - 1),  # the wrong codes so far count towards the limit
        RequestItem.verified_at.set(now),
        RequestItem.due_at.set(due),
        RequestItem.expires_at.set(skeleton_expires),
        *retention.schedule_actions(request, retention.Rule.SKELETON, now),
    ]
    try:
        _mark_verified(request, challenge, now, updates, counter)
    except Conflict:
        # Verified meanwhile, e.g. by the same subject's retry that overtook this call: answer as a retry.
        return _verify_again(load_request(request_id), code)
    # The routing and the confirmation follow from the stored transition (rightsdesk.routing.follow_up).
    return Verified(request_id, Status.VERIFIED.value, token, due, request.locale)


def _read_counters(
    request: RequestItem, source: str | None, now: datetime
) -> tuple[list[tuple[limits.Limit, str]], SubjectCounterItem | None]:
    """The wrong-code budgets this verification draws on, and the subject's count of verified
    requests this year (rightsdesk.intake.subjects), read in one call. Refuses, before the code is
    compared, as a request out of attempts would be, if a budget is used up."""
    guessers = _guessing_budgets(request, source)
    where = subjects.counter_key(request, now)
    keys = [limits.counter_key(limit, key, now) for limit, key in guessers]
    found = get_many([*keys, *([where] if where else [])], consistent_read=True)
    if any(limits.used_by(item) >= limit.maximum for (limit, _), item in zip(guessers, found)):
        raise TooManyAttempts("too many wrong codes; please submit your request again")
    counter = found[len(keys)] if where else None
    return guessers, subjects.counter_as_read(request, now, counter)  # type: ignore[arg-type]


def _guessing_budgets(request: RequestItem, source: str | None) -> list[tuple[limits.Limit, str]]:
    """The wrong-code budgets a verification draws on: the address's (across all its requests, so
    resubmitting for fresh codes gives no fresh guesses) and the source's."""
    budgets = [(limits.failed_codes_per_address(), limits.address_key(request.subject_hash))]
    if source:
        budgets.append((limits.failed_codes_per_source(), limits.source_key(source)))
    return budgets


def _count_wrong_code(budgets: list[tuple[limits.Limit, str]]) -> None:
    """Charge a wrong code to each budget. Checked before and counted after the comparison, so
    parallel guesses may overshoot a budget by what is in flight; each request's own five
    attempts (_spend_attempt) stay exact."""
    for limit, key in budgets:
        limits.spend(limit, key)


def _status_token(request_id: str, code_hash: str) -> str:
    return subject_secrets.status_token(request_id, code_hash)


def _verify_again(request: RequestItem, code: str) -> Verified:
    """A verify on a request that is already verified: the same answer (same token) for the right
    code within the code's lifetime after verification, so a subject whose answer was lost is not
    left without the token. Every refusal is the one 409 whatever the reason (not verified with a
    code, window over, too many tries, wrong code): it tells a guesser nothing. Each try is counted
    atomically before the comparison, with the code's own wrong attempts, up to MAX_CODE_ATTEMPTS."""
    refused = Conflict("this request is not waiting for a code", code="not_awaiting_verification")
    window = retention.keep_for(retention.Rule.VERIFICATION_CODE)
    if not request.verified_code_hash or request.verified_at is None or clock.now() > request.verified_at + window:
        raise refused
    try:
        request.update(
            actions=[RequestItem.verify_retries.add(1)],
            condition=RequestItem.verified_code_hash.exists() & (RequestItem.verify_retries < MAX_CODE_ATTEMPTS),
        )
    except UpdateError:
        raise refused from None
    token = _status_token(request.request_id, request.verified_code_hash)
    if not hashing.matches("code", code, request.verified_code_hash):
        raise refused
    if not hashing.matches("status_token", token, request.status_token_hash):
        raise refused  # a token made otherwise (by an older release): it cannot be made again
    # The routing and the confirmation came from the stored transition, whatever became of the
    # first call (rightsdesk.routing.follow_up): nothing to queue again here.
    return Verified(request.request_id, request.status, token, request.due_at, request.locale, repeated=True)


def _mark_verified(
    request: RequestItem,
    challenge: ChallengeItem,
    now: datetime,
    updates: list,
    counter: SubjectCounterItem | None,
) -> None:
    """identity_unverified -> verified, with the subject's yearly count (`counter`, as read) and the
    request's flags in the same write. A lost race on the count (another request of the same
    subject verified in between) is retried with the count read again; a lost race on the status
    is the caller's conflict."""
    for attempt in range(3):
        if attempt:
            counter = subjects.counter_for(request, now)
        flags = subjects.flags_for(request, subjects.seen(counter))
        try:
            transition(
                request,
                Status.VERIFIED,
                actor="subject",
                at=now,
                updates=[*updates, *([RequestItem.flags.set(flags)] if flags else [])],
                also_delete=[challenge],
                also_update=[subjects.count_one_more(counter, now)] if counter is not None else [],
            )
            return
        except Conflict:
            if load_request(request.request_id).status != Status.IDENTITY_UNVERIFIED.value:
                break
    raise Conflict("this request is not waiting for a code", code="not_awaiting_verification")


def authorize(request_id: str, token: str | None, *, source: str | None = None) -> RequestItem:
    """The request, if `token` is its status token. `source` (the caller's address) is counted on
    every failure and refused after too many (rightsdesk.intake.guard)."""
    guard.refuse_if_locked(guard.STATUS_TOKEN, source)
    try:
        request = load_request(request_id)
    except NotFound:
        guard.count_failure(guard.STATUS_TOKEN, source)
        raise
    if not token or not hashing.matches("status_token", token, request.status_token_hash):
        guard.count_failure(guard.STATUS_TOKEN, source)
        raise Unauthorized("a valid status token is required")
    return request


STATUS_VIEW_SCHEMA = request_view.SUBJECT_STATUS.schema()


def status_view(request: RequestItem) -> dict:
    """What the subject may see: no personal data, only the request's progress."""
    return request_view.view(request, request_view.SUBJECT_STATUS)


def cancel(request_id: str, token: str | None, *, source: str | None = None) -> RequestItem:
    """The subject withdraws the request. Its personal fields go at once; the skeleton stays."""
    from rightsdesk.store import deletion  # a cancellation only: not at every start

    for attempt in range(3):
        request = authorize(request_id, token, source=source)
        if not is_open(request.status):
            raise Conflict(f"a {request.status} request can no longer be cancelled", code="illegal_transition")
        was_forwarded = request.status not in BEFORE_ROUTING
        was_in_progress = request.status == Status.IN_PROGRESS.value  # perhaps running through the connectors
        now = clock.now()
        try:
            transition(
                request,
                Status.CANCELLED,
                actor="subject",
                at=now,
                cause="cancelled_by_subject",
                # `erasure`: the deletion audit names the subject's own instruction as the cause
                updates=deletion.purge_actions(RequestItem, deletion.Cause.ERASURE, now),
            )
            break
        except IllegalTransition:
            # The dispatcher may move the request (forwarded -> delivered) in the same moment;
            # the subject's cancel still stands while the request is open.
            if attempt == 2:
                raise
    if was_forwarded:
        outbox.enqueue_delivery(request_id=request_id, event="cancelled")
    if was_in_progress:
        from rightsdesk.connectors import execution

        execution.forget_identities(request_id)
    return request
