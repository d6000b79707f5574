"""The lifecycle run (LifecycleFunction, hourly; `rightsdesk lifecycle run [--dry-run]`): finds the
accounts and consents crossing a threshold through the due index and acts on each once.

Like the retention sweeper it never scans: each day bucket of the due index (GSI2, LIFE#<day>)
since the last complete run is queried for entries due by now, and each entry's item is read
once, consistently, to confirm it is still due. A run therefore reads what is crossing a threshold,
not what the table holds (`Report.items_read`; bench/lifecycle_run.py measures it with 100k
accounts). Every step is a conditional write with an audit event, so a step that runs twice (two
overlapping runs, a retry) acts once:

- an active account past its warning threshold: the warning mail in the holder's language (its id
  names the account and the inactivity period, so the notifier sends it once per period), then
  active -> warned, due again at the deletion threshold;
- a warned account past its deletion threshold, or a cancelled one: an erasure request opened by
  the operator (rightsdesk.lifecycle.erasures) and the account deleted;
- a granted consent five years old whose subject holds no account: the contact's data erased the
  same way (the erasure deletes the consent records too). A customer's consent lasts while the
  account is in use and goes with the account's erasure: its expiry entry is dropped.
- an account under a legal hold is never touched (the hold took it off the index; one filed again
  by a report meanwhile is skipped and reported).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pynamodb.exceptions import PynamoDBException, TransactWriteError, UpdateError

from rightsdesk.audience import consents
from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import Conflict
from rightsdesk.lifecycle import accounts, rules
from rightsdesk.lifecycle.erasures import ACTOR, lifecycle_event, open_erasure
from rightsdesk.platform import hashing
from rightsdesk.store import due_index, outbox
from rightsdesk.store.deletion import conditional_failure
from rightsdesk.store.due_index import buckets, closable
from rightsdesk.store.items.accounts import AccountItem, LifecycleState
from rightsdesk.store.items.audience import ConsentItem, ContactItem
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.table import _Item, transaction

log = logging.getLogger(__name__)

WARNED = "inactivity_warning_sent"
WARNED_AGAIN = "inactivity_warning_resent"  # its mail was never queued: warned again, deletion moved
WARNING_MAIL = "account_inactivity_warning"
CONSENT = "consent"  # what a consent entry's step is reported as


@dataclass
class Report:
    now: int
    dry_run: bool = False
    buckets: int = 0
    queries: int = 0
    items_read: int = 0
    counts: Counter = field(default_factory=Counter)
    held: list[str] = field(default_factory=list)
    items: list[dict] = field(default_factory=list)  # what was (or, dry, would be) done, and why
    interrupted: str | None = None
    swept_through: int | None = None

    def as_dict(self) -> dict:
        """JSON-ready: account ids, steps and times; never an address."""
        return {
            "now": clock.isoformat(datetime.fromtimestamp(self.now, timezone.utc)),
            "dry_run": self.dry_run,
            "buckets": self.buckets,
            "queries": self.queries,
            "items_read": self.items_read,
            "counts": dict(sorted(self.counts.items())),
            "held": self.held,
            "items": self.items,
            "interrupted": self.interrupted,
            "swept_through": (
                clock.isoformat(datetime.fromtimestamp(self.swept_through, timezone.utc))
                if self.swept_through is not None
                else None
            ),
        }


# ------------------------------------------------------------------ reading the due index


def _due_keys(bucket: int, now: int, report: Report) -> Iterator[list[tuple[str, str]]]:
    return due_index.due_keys(retention.lifecycle_bucket(bucket), now, report)


def _fetch(keys: list[tuple[str, str]], report: Report) -> dict[tuple[str, str], _Item]:
    found: dict[tuple[str, str], _Item] = {}
    account_keys = [key for key in keys if key[1] == AccountItem.SK]
    consent_keys = [key for key in keys if key[1].startswith(ConsentItem.SK_PREFIX)]
    for model, wanted in ((AccountItem, account_keys), (ConsentItem, consent_keys)):
        if wanted:
            for item in model.batch_get(wanted, consistent_read=True):
                report.items_read += 1
                found[(item.pk, item.sk)] = item
    return found


# ------------------------------------------------------------------ the run


def run(
    *,
    now: int | None = None,
    dry_run: bool = False,
    max_items: int | None = None,
    deadline: float | None = None,
) -> Report:
    """Act on everything due by `now`; a dry run reads the same and writes nothing, reporting who
    would be warned or erased and why. `max_items` and `deadline` (time.monotonic()) stop early;
    the next run resumes in the bucket it stopped in."""
    now = clock.epoch() if now is None else now
    report = Report(now=now, dry_run=dry_run)
    state = due_index.progress(LifecycleState)
    report.items_read += 1 if state is not None else 0
    swept, floor = due_index.start(state)
    handled = 0
    contiguous = True
    try:
        for bucket in buckets(swept, floor, now):
            report.buckets += 1
            complete = True
            for keys in _due_keys(bucket, now, report):
                items = _fetch(keys, report)
                for key in keys:
                    report.interrupted = _stop(handled, max_items, deadline)
                    if report.interrupted:
                        return report
                    complete &= _one(key, items.get(key), now, dry_run, report)
                    handled += 1
            contiguous &= complete
            if contiguous and not dry_run and closable(bucket, now):
                report.swept_through = bucket
    finally:
        if report.swept_through is not None and report.swept_through != swept:
            due_index.record_progress(LifecycleState, report.swept_through)
    return report


def _stop(handled: int, max_items: int | None, deadline: float | None) -> str | None:
    if max_items is not None and handled >= max_items:
        return "max_items"
    if deadline is not None and time.monotonic() >= deadline:
        return "deadline"
    return None


def _one(key: tuple[str, str], item: _Item | None, now: int, dry_run: bool, report: Report) -> bool:
    """One due entry; False if it must be tried again (its bucket stays open)."""
    try:
        if key[1].startswith(ConsentItem.SK_PREFIX):
            return _consent(item, now, dry_run, report)  # type: ignore[arg-type]
        return _account(item, now, dry_run, report)  # type: ignore[arg-type]
    except PynamoDBException as error:
        # The cause's message may quote item values; its type says enough.
        log.warning("lifecycle run: %s on one entry; it stays due", type(error.cause or error).__name__)
        report.counts["error"] += 1
        return False


def _iso(epoch: int | None) -> str | None:
    return clock.isoformat(datetime.fromtimestamp(epoch, timezone.utc)) if epoch is not None else None


def _account(account: AccountItem | None, now: int, dry_run: bool, report: Report) -> bool:
    snap = accounts.snapshot(account)
    step = rules.plan(snap, now)
    if step is rules.Step.GONE:
        report.counts["gone"] += 1
        return True
    assert account is not None and snap is not None
    if step is rules.Step.HELD:
        report.counts["held"] += 1
        report.held.append(account.account_id)
        return True
    if step is rules.Step.NOT_DUE:
        # Filed earlier than its own threshold (a report that named no class): file it again there.
        due = rules.next_due(snap)
        if not dry_run and due is not None and due != account.next_due_at:
            _refile(account, due)
        report.counts["not_due"] += 1
        return True
    cause = rules.CANCELLATION if account.state == rules.CANCELLED else rules.INACTIVITY
    entry = {
        "account_id": account.account_id,
        "account_class": account.account_class,
        "step": step.value,
        "why": _why(account, step, cause),
        "last_active_day": account.last_active_day,
        "due_at": _iso(rules.next_due(snap)),
    }
    if account.state == rules.CANCELLED:
        entry["cancel_by"] = clock.isoformat(account.cancel_by) if account.cancel_by else None
    report.items.append(entry)
    if dry_run:
        report.counts[f"would_{step.value}"] += 1
        return True
    if step is rules.Step.WARN and account.state == rules.WARNED:
        outcome = _warn_again(account, now)
    elif step is rules.Step.WARN:
        outcome = _warn(account, now)
    else:
        outcome = _erase(account, cause)
    report.counts[outcome] += 1
    entry["outcome"] = outcome
    return True


def _why(account: AccountItem, step: rules.Step, cause: str) -> str:
    if cause == rules.CANCELLATION:
        return "cancelled by its holder"
    chosen = rules.periods(account.account_class)
    if step is rules.Step.WARN and account.state == rules.WARNED:
        return "warned, but the warning's mail was never queued: warned again, the deletion moved"
    if step is rules.Step.WARN:
        return f"inactive {chosen.warn.days} days after {account.last_active_day}"
    return f"inactive {chosen.delete.days} days after {account.last_active_day}, warned"


def _refile(account: AccountItem, due: int) -> None:
    keys = retention.lifecycle_index_keys(due, account.pk, account.sk)
    try:
        account.update(
            actions=[
                AccountItem.next_due_at.set(due),
                AccountItem.gsi2pk.set(keys["gsi2pk"]),
                AccountItem.gsi2sk.set(keys["gsi2sk"]),
            ],
            condition=(AccountItem.next_due_at == account.next_due_at) & AccountItem.legal_hold.does_not_exist(),
        )
    except UpdateError as error:
        if not conditional_failure(error):
            raise


def _warn(account: AccountItem, now: int) -> str:
    """active -> warned, audited, due again at the deletion threshold; then the mail, under an id
    fixed per account and inactivity period (the notifier sends an id once), then the mark that it
    was queued. A run that stops between the write and the mark leaves a warned account without
    the mark: it is warned again before anything is erased (_warn_again)."""
    at = datetime.fromtimestamp(now, timezone.utc)
    period = account.last_active_day or ""
    erase_due = int(rules.erase_at(account.account_class, period, at).timestamp())
    event = lifecycle_event(
        account.pk,
        action=WARNED,
        actor=ACTOR,
        at=at,
        from_status=rules.ACTIVE,
        to_status=rules.WARNED,
        cause="inactivity" if account.email else "inactivity_no_address",
    )
    changed = _warned_write(
        account,
        [AccountItem.state.set(rules.WARNED), AccountItem.warned_for.set(period)],
        at,
        erase_due,
        event,
        condition=(AccountItem.state == rules.ACTIVE) & (AccountItem.last_active_day == period),
    )
    if changed:
        return "changed"
    _queue_warning(account, period, at)
    return "warned"


def _warn_again(account: AccountItem, now: int) -> str:
    """A warned account whose warning mail was never queued: the warning goes now, and the deletion
    moves to the full notice period after it."""
    at = datetime.fromtimestamp(now, timezone.utc)
    period = account.warned_for or account.last_active_day or ""
    erase_due = int(rules.erase_at(account.account_class, period, at).timestamp())
    event = lifecycle_event(
        account.pk, action=WARNED_AGAIN, actor=ACTOR, at=at, from_status=rules.WARNED, to_status=rules.WARNED
    )
    changed = _warned_write(
        account,
        [],
        at,
        erase_due,
        event,
        condition=(AccountItem.state == rules.WARNED)
        & (AccountItem.warned_for == period)
        & AccountItem.warning_queued_at.does_not_exist(),
    )
    if changed:
        return "changed"
    _queue_warning(account, period, at)
    return "warned_again"


def _warned_write(account: AccountItem, actions: list, at: datetime, erase_due: int, event, *, condition) -> bool:
    """The warning's state change with its audit event; True if the account changed meanwhile."""
    keys = retention.lifecycle_index_keys(erase_due, account.pk, account.sk, int(at.timestamp()))
    try:
        with transaction() as tx:
            tx.update(
                account,
                actions=[
                    *actions,
                    AccountItem.warned_at.set(at),
                    AccountItem.warning_queued_at.remove(),
                    AccountItem.next_due_at.set(erase_due),
                    AccountItem.gsi2pk.set(keys["gsi2pk"]),
                    AccountItem.gsi2sk.set(keys["gsi2sk"]),
                ],
                condition=condition & AccountItem.legal_hold.does_not_exist(),
            )
            tx.save(event, condition=AuditEvent.sk.does_not_exist())
    except TransactWriteError as error:
        if conditional_failure(error):
            return True
        raise
    return False


def _queue_warning(account: AccountItem, period: str, at: datetime) -> None:
    if not account.email:
        return
    outbox.enqueue_mail(
        WARNING_MAIL,
        mail_id=warning_mail_id(account.account_id, period),
        account_id=account.account_id,
        period=period,
    )
    try:
        account.update(
            actions=[AccountItem.warning_queued_at.set(at)],
            condition=(AccountItem.state == rules.WARNED) & (AccountItem.warned_for == period),
        )
    except UpdateError as error:
        if not conditional_failure(error):
            raise


def warning_mail_id(account_id: str, period: str) -> str:
    return f"lifecycle-warn-{account_id}-{period}"


def _erase(account: AccountItem, cause: str) -> str:
    try:
        open_erasure(
            email=account.email,
            # An account known by ids only: a subject key of its own, under which the operator's
            # own data holds nothing; the connectors start from the account's ids.
            subject_hash=account.email_hash or hashing.keyed_hash("account", account.account_id),
            cause=cause,
            locale=account.locale,
            identities=account.identities.as_dict() if account.identities is not None else None,
            account=account,
        )
    except Conflict:
        return "changed"
    return "erasure_opened"


def _consent(consent: ConsentItem | None, now: int, dry_run: bool, report: Report) -> bool:
    """A granted consent five years old (rightsdesk.audience.consents files it on grant)."""
    if consent is None or consent.state != consents.GRANTED or consent.granted_at is None:
        report.counts["gone"] += 1
        return True
    due = retention.expires_at(retention.Rule.CONSENT_RECORD, consent.granted_at)
    if due > now:
        report.counts["not_due"] += 1
        return True
    email_hash = consent.pk.removeprefix(ContactItem.key(""))
    customer = accounts.has_account(email_hash)
    report.items.append(
        {
            "contact": email_hash,
            "purpose": consent.purpose,
            "step": "keep_with_account" if customer else rules.Step.ERASE.value,
            "why": (
                "consent given 5 years ago; the subject holds an account: it goes with the account's erasure"
                if customer
                else "consent given 5 years ago, no account: the contact's data is erased"
            ),
            "due_at": _iso(due),
        }
    )
    if dry_run:
        report.counts["would_keep_with_account" if customer else "would_erase"] += 1
        return True
    if customer:
        consent.update(
            actions=[ConsentItem.gsi2pk.remove(), ConsentItem.gsi2sk.remove()],
            condition=ConsentItem.gsi2sk == consent.gsi2sk,
        )
        report.counts["kept_with_account"] += 1
        return True
    try:
        contact = ContactItem.get(ContactItem.key(email_hash), ContactItem.SK, consistent_read=True)
    except ContactItem.DoesNotExist:
        contact = None
    report.items_read += 1
    try:
        open_erasure(
            email=contact.email if contact is not None else None,
            subject_hash=email_hash,
            cause=rules.CONSENT_EXPIRY,
            locale=contact.locale if contact is not None else None,
            consent=consent,
        )
    except Conflict:
        report.counts["changed"] += 1
        return True
    report.counts["erasure_opened"] += 1
    return True
