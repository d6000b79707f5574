"""How long each kind of data is kept: the one table of rules (DESIGN.md, Retention).

No other module computes a retention period. A deployment can override each rule (template
parameters, env RETENTION_<RULE>_SECONDS): rightsdesk.platform.config, the one reader of the
environment, installs its lookup here with `use_overrides` when it is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from rightsdesk.kernel import clock

if TYPE_CHECKING:  # the kernel names pynamodb's types; it never loads pynamodb itself
    from pynamodb.expressions.update import Action
    from pynamodb.models import Model

    _Stored = TypeVar("_Stored", bound=Model)
else:
    _Stored = TypeVar("_Stored")


class _Keyed(Protocol):
    """An item of the table: what `schedule_actions` reads of it."""

    @property
    def pk(self) -> str: ...

    @property
    def sk(self) -> str: ...


class Rule(str, Enum):
    UNVERIFIED_REQUEST = "unverified_request"
    VERIFICATION_CODE = "verification_code"
    DELIVERED_SUBJECT_DATA = "delivered_subject_data"
    UNDELIVERED_SUBJECT_DATA = "undelivered_subject_data"
    CLOSED_INTERNAL_REQUEST = "closed_internal_request"
    SKELETON = "skeleton"
    CONSENT_RECORD = "consent_record"
    # breach and policy notices (docs/notices.md)
    BREACH_RECORD = "breach_record"
    BREACH_RECIPIENT = "breach_recipient"
    SUPPRESSION = "suppression"
    UNSUBSCRIBE_TOKEN = "unsubscribe_token"
    # abuse limits (rightsdesk.store.limits): counters per address hash, source hash or request
    RATE_LIMIT_COUNTER = "rate_limit_counter"
    # queue messages carry ids only (rightsdesk.outbound.mail_kinds): what a mail is made from waits in the table
    LIST_ISSUE = "list_issue"
    UNFETCHED_PULL_REQUEST = "unfetched_pull_request"
    # the operator's own data (rightsdesk.own_data.exports): an access or portability answer
    EXPORT = "export"
    # the free-request count per subject, controller and calendar year (rightsdesk.intake.subjects)
    SUBJECT_YEAR_COUNTER = "subject_year_counter"
    # powertools idempotency records (the IdempotencyTable): a key, a body hash and the answer, no personal data
    IDEMPOTENT_SUBMISSION = "idempotent_submission"
    IDEMPOTENT_QUEUE_MESSAGE = "idempotent_queue_message"
    # the webhook delivery attempt log (rightsdesk.routing.delivery_log): ids, statuses, timings, no bodies
    DELIVERY_ATTEMPT = "delivery_attempt"
    # account lifecycles (rightsdesk.lifecycle): an account record and its activity times, and the
    # ids an erasure the lifecycle opened starts from
    ACCOUNT_RECORD = "account_record"
    ERASURE_SEED = "erasure_seed"
    # an HTTP connector's one-time callback offer (rightsdesk.connectors.callbacks), after its deadline
    CONNECTOR_CALLBACK = "connector_callback"


@dataclass(frozen=True)
class RetentionRule:
    rule: Rule
    keep: timedelta
    then: str  # "delete" the item, or "purge" its personal fields and keep the skeleton


DEFAULTS: dict[Rule, RetentionRule] = {
    Rule.UNVERIFIED_REQUEST: RetentionRule(Rule.UNVERIFIED_REQUEST, timedelta(hours=72), "delete"),
    Rule.VERIFICATION_CODE: RetentionRule(Rule.VERIFICATION_CODE, timedelta(minutes=15), "delete"),
    Rule.DELIVERED_SUBJECT_DATA: RetentionRule(Rule.DELIVERED_SUBJECT_DATA, timedelta(hours=1), "purge"),
    # Retries exhausted (delivery_failed): long enough for the operator to mend the endpoint and
    # redrive the dead-letter queue (it keeps messages 14 days), not for ever. A redrive that then
    # delivers replaces this with the delivered rule's hour.
    Rule.UNDELIVERED_SUBJECT_DATA: RetentionRule(Rule.UNDELIVERED_SUBJECT_DATA, timedelta(days=30), "purge"),
    Rule.CLOSED_INTERNAL_REQUEST: RetentionRule(Rule.CLOSED_INTERNAL_REQUEST, timedelta(days=30), "purge"),
    Rule.SKELETON: RetentionRule(Rule.SKELETON, timedelta(days=3 * 365), "delete"),
    Rule.CONSENT_RECORD: RetentionRule(Rule.CONSENT_RECORD, timedelta(days=5 * 365), "delete"),
    # The incident and its audit trail are the Art. 33(5) record: from detection, longer than the
    # request skeleton because an authority may ask about a breach years later.
    Rule.BREACH_RECORD: RetentionRule(Rule.BREACH_RECORD, timedelta(days=5 * 365), "delete"),
    # A notice item holds the recipient's address: kept, from declaration, long enough to resend and
    # to answer the authority's first questions; the incident keeps the counts after that.
    Rule.BREACH_RECIPIENT: RetentionRule(Rule.BREACH_RECIPIENT, timedelta(days=90), "delete"),
    # A bounced or complaining address, as a keyed hash only: from its latest bounce or complaint.
    Rule.SUPPRESSION: RetentionRule(Rule.SUPPRESSION, timedelta(days=2 * 365), "delete"),
    # How long an unsubscribe link works, and so how long its spent marker must be remembered.
    Rule.UNSUBSCRIBE_TOKEN: RetentionRule(Rule.UNSUBSCRIBE_TOKEN, timedelta(days=365), "delete"),
    # A counter of a limit's window (an hour per address, a minute per source, a day per request):
    # kept from the window's end for this long, i.e. not at all; a counter means nothing afterwards.
    Rule.RATE_LIMIT_COUNTER: RetentionRule(Rule.RATE_LIMIT_COUNTER, timedelta(0), "delete"),
    # An optional list's issue (no address): its members' mails are made from it when sent, so it
    # lives as long as a mail of it can still be sent, a dead-letter redrive included (14 days).
    Rule.LIST_ISSUE: RetentionRule(Rule.LIST_ISSUE, timedelta(days=15), "delete"),
    # A request forwarded to a pull controller that never fetches it: its contact is reminded
    # (rightsdesk.pull_watch); this long after the due date its personal fields are purged, it is
    # marked undelivered (delivery_failed) and the operator alerted. Counted from the due date, so
    # an extension moves it too; two weeks leave the contact time to answer the overdue reminders.
    Rule.UNFETCHED_PULL_REQUEST: RetentionRule(Rule.UNFETCHED_PULL_REQUEST, timedelta(days=14), "purge"),
    # DESIGN.md's "exports stored": an answer to an access or portability request of the operator's
    # own data can be downloaded (with the status token) this long after the request was completed;
    # the completion mail names the date. Counted from completion.
    Rule.EXPORT: RetentionRule(Rule.EXPORT, timedelta(days=7), "delete"),
    # One counter per subject, controller and UTC calendar year (GDPR Art. 12(5): one free request a
    # year): worth nothing once its year is over, since the key names the year. Counted from the end
    # of that year, for this long, i.e. not at all.
    Rule.SUBJECT_YEAR_COUNTER: RetentionRule(Rule.SUBJECT_YEAR_COUNTER, timedelta(0), "delete"),
    # A submission retried with the same Idempotency-Key gets the first answer: a client's retry
    # comes within seconds or, after an outage, hours; a day covers both without keeping more.
    Rule.IDEMPOTENT_SUBMISSION: RetentionRule(Rule.IDEMPOTENT_SUBMISSION, timedelta(hours=24), "delete"),
    # A queue message (a delivery, a mail) is handled once however often SQS brings it back: the
    # record outlives the delivery retry schedule (about three and a quarter days, then the
    # dead-letter queue), so a late receive never sends twice.
    Rule.IDEMPOTENT_QUEUE_MESSAGE: RetentionRule(Rule.IDEMPOTENT_QUEUE_MESSAGE, timedelta(days=7), "delete"),
    # DESIGN.md's "delivery attempt log (no bodies)": each attempt (time, event type, ids, HTTP
    # status, latency, error class, outcome) and each delivery's latest state, from the attempt.
    # Long enough to look back on an outage and redeliver; DynamoDB's TTL deletes them (no
    # personal data: not on the sweeper's index, no deletion audit event each).
    Rule.DELIVERY_ATTEMPT: RetentionRule(Rule.DELIVERY_ATTEMPT, timedelta(days=90), "delete"),
    # DESIGN.md's "account records and activity times": kept while the account is in use; this long
    # after the end of its last active day the account is erased with all its data (an erasure
    # request the operator opens, rightsdesk.lifecycle), or at once when its holder cancels it. The
    # default account class's deletion threshold; a class may set its own (template parameters).
    Rule.ACCOUNT_RECORD: RetentionRule(Rule.ACCOUNT_RECORD, timedelta(days=56), "delete"),
    # The ids a lifecycle erasure starts from besides the address (user_id, account_id, ...): kept
    # on the request's partition until its execution has run, at most this long (a grace period
    # and a parked execution's retries fit well within it).
    Rule.ERASURE_SEED: RetentionRule(Rule.ERASURE_SEED, timedelta(days=30), "delete"),
    # A used or expired callback offer (a keyed hash of its secret, the task token until used,
    # counts): kept this long after its deadline, so a product calling late is told why (410, 409)
    # instead of 404; DynamoDB's TTL deletes it.
    Rule.CONNECTOR_CALLBACK: RetentionRule(Rule.CONNECTOR_CALLBACK, timedelta(days=1), "delete"),
}

# The inactivity warning of the default account class: this long after the end of the last active
# day the holder is told when the account will be erased and how to keep it (rightsdesk.lifecycle).
# Not a retention period itself but the notice before one, so it lives beside it.
ACCOUNT_WARNING = timedelta(days=28)


@dataclass(frozen=True)
class InactivityPeriods:
    """An account class's thresholds, counted from the end of the account's last active (UTC) day."""

    warn: timedelta
    delete: timedelta


def inactivity_periods(warn_days: int | None = None, delete_days: int | None = None) -> InactivityPeriods:
    """A class's thresholds in days, or the defaults (ACCOUNT_WARNING, Rule.ACCOUNT_RECORD's period)
    for those not given. The warning must come before the deletion."""
    warn = timedelta(days=warn_days) if warn_days is not None else ACCOUNT_WARNING
    delete = timedelta(days=delete_days) if delete_days is not None else keep_for(Rule.ACCOUNT_RECORD)
    if not timedelta(0) < warn < delete:
        raise ValueError("an account class warns after more than 0 days and before it deletes")
    return InactivityPeriods(warn=warn, delete=delete)


# Expiry-index buckets: one GSI2 partition per day. The sweeper queries each bucket for `due <= now`,
# so the size decides how many (mostly empty) partitions a sweep reads after a long pause, never
# how late anything goes.
BUCKET_SECONDS = 86400


# Seconds for a rule, or None for the table's; installed by config (imported with the rightsdesk
# package). A period counted without the deployment's overrides would be silently wrong, so that
# is an error, not a default.
_override_seconds: Callable[[Rule], int | None] | None = None


def use_overrides(lookup: Callable[[Rule], int | None] | None) -> None:
    global _override_seconds
    _override_seconds = lookup


def rule(name: Rule) -> RetentionRule:
    default = DEFAULTS[name]
    if _override_seconds is None:
        raise RuntimeError("retention overrides not loaded: import rightsdesk.platform.config first")
    override = _override_seconds(name)
    if override is not None:
        return RetentionRule(name, timedelta(seconds=override), default.then)
    return default


def keep_for(name: Rule, override: timedelta | None = None) -> timedelta:
    """How long to keep; a per-controller override (e.g. purge-after) replaces the default."""
    return override if override is not None else rule(name).keep


def keep_seconds(name: Rule) -> int:
    """The rule's period in whole seconds: for stores that take a number (powertools idempotency)."""
    return int(keep_for(name).total_seconds())


def keep_days(name: Rule) -> int:
    """The rule's period in whole days: what a page or a mail tells a person ("for 7 days")."""
    return keep_for(name).days


def expires_at(name: Rule, start: datetime, override: timedelta | None = None) -> int:
    """Epoch seconds at which data under `name` that started at `start` must be gone."""
    return int((start + keep_for(name, override)).timestamp())


def bucket_start(epoch: int) -> int:
    return epoch // BUCKET_SECONDS * BUCKET_SECONDS


def expiry_bucket(expires_epoch: int) -> str:
    return f"EXP#{bucket_start(expires_epoch)}"


def expiry_index_keys(expires_epoch: int, pk: str, sk: str, now: int | None = None) -> dict[str, str]:
    """GSI2 attributes that let the sweeper find this item by when it expires.

    A due time already past goes into the current bucket: the sweeper may be done with older ones.
    """
    filed = max(expires_epoch, clock.epoch() if now is None else now)
    return {"gsi2pk": expiry_bucket(filed), "gsi2sk": f"{expires_epoch:012d}#{pk}#{sk}"}


# The lifecycle's due index (rightsdesk.lifecycle): the same GSI2 and day buckets as the sweeper's,
# in partitions of their own, so neither reads the other's entries.
LIFECYCLE_BUCKET_PREFIX = "LIFE#"


def lifecycle_bucket(due_epoch: int) -> str:
    return f"{LIFECYCLE_BUCKET_PREFIX}{bucket_start(due_epoch)}"


def lifecycle_index_keys(due_epoch: int, pk: str, sk: str, now: int | None = None) -> dict[str, str]:
    """GSI2 attributes that let the lifecycle run find this item when its next threshold is due;
    a time already past is filed in the current bucket, as for the sweeper."""
    filed = max(due_epoch, clock.epoch() if now is None else now)
    return {"gsi2pk": lifecycle_bucket(filed), "gsi2sk": f"{due_epoch:012d}#{pk}#{sk}"}


def schedule(name: Rule, start: datetime, pk: str, sk: str, override: timedelta | None = None) -> dict[str, Any]:
    """Attributes that put an item on the sweeper's list: which rule, when, and the GSI2 keys."""
    due = expires_at(name, start, override)
    return {"retention_rule": name.value, "retention_due_at": due, **expiry_index_keys(due, pk, sk)}


def request_expires_at(created_at: datetime, verified_at: datetime | None) -> int:
    """The TTL of a request item, from its own dates: 72 h unverified, the skeleton's 3 years once verified."""
    if verified_at is None:
        return expires_at(Rule.UNVERIFIED_REQUEST, created_at)
    return expires_at(Rule.SKELETON, verified_at)


def after_purge(created_at: datetime, verified_at: datetime | None) -> tuple[Rule, datetime]:
    """What a request owes once its personal fields are gone: the skeleton rule, and from when."""
    return Rule.SKELETON, verified_at or created_at


def personal_data_due(rule_name: str | None, due_epoch: int | None, at: int | None = None) -> bool:
    """Whether personal fields are past their purge time, so reads treat them as gone before the
    sweeper gets there. A legal hold overrides this: callers check it first."""
    if rule_name is None or due_epoch is None:
        return False
    try:
        purging = rule(Rule(rule_name)).then == "purge"
    except ValueError:
        return False
    return purging and is_expired(int(due_epoch), at)


def schedule_actions(model: _Keyed, name: Rule, start: datetime, override: timedelta | None = None) -> list[Action]:
    """The same as `schedule`, as pynamodb update actions on an existing item."""
    values = schedule(name, start, model.pk, model.sk, override)
    return [getattr(type(model), attribute).set(value) for attribute, value in values.items()]


def is_expired(expires_epoch: float | None, at: int | None = None) -> bool:
    """DynamoDB deletes TTL items up to two days late; every read treats them as gone already."""
    if expires_epoch is None:
        return False
    return expires_epoch <= (at if at is not None else clock.epoch())


def is_live(item: Any) -> bool:
    """Whether a read may see the item at all: expired means absent, unless a legal hold applies."""
    return getattr(item, "legal_hold", None) is not None or not is_expired(item.expires_at)


def live_item(model: type[_Stored], hash_key: str, range_key: str, *, consistent_read: bool = False) -> _Stored | None:
    """The item of `model` at that key if a read may see it (is_live), else None: missing and
    expired read the same."""
    try:
        item = model.get(hash_key, range_key, consistent_read=consistent_read)
    except model.DoesNotExist:
        return None
    return item if is_live(item) else None


def kept_for_legal_basis_until(erased_at: datetime, period_days: int) -> datetime:
    """When a record kept under a legal exception (Art. 17(3)) is erased: `period_days`, the period a
    connector's `keep` rule declares with its basis, after the erasure that kept it (the
    conservative reading: a statutory period that began earlier ends earlier). Not a rule of the
    table: each connector states its own (rightsdesk.connectors.kept_records)."""
    return erased_at + timedelta(days=period_days)
