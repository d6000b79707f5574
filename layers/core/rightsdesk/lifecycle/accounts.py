"""Accounts and their activity, as the product reports them (rightsdesk.lifecycle.events).

Activity costs at most one write per account per UTC day: the write's condition is keyed on the
day (`last_active_day < today`), so a second report the same day fails its condition and changes
nothing, without reading anything first; a container also remembers the accounts it recorded today
and sends nothing for them again. The write moves the account's entry on the due index (GSI2,
LIFE#<day bucket>) to its next threshold, so the hourly run finds only the accounts crossing one.

Activity on a warned account cancels the pending deletion: that write also records the audit event
`deletion_cancelled` (a transaction, taken only when the plain write's condition failed). A
cancelled account stays cancelled whatever activity follows: its erasure is the holder's wish.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.update import Action

from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import Conflict, InvalidInput, NotFound
from rightsdesk.lifecycle import rules
from rightsdesk.lifecycle.erasures import lifecycle_event
from rightsdesk.platform import config, hashing
from rightsdesk.store import audit
from rightsdesk.store.deletion import conditional_failure
from rightsdesk.store.items.accounts import AccountItem, AccountSubjectItem
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.requests import LegalHold
from rightsdesk.store.items.table import transaction
from rightsdesk.store.outbox import ID

if TYPE_CHECKING:
    from rightsdesk.platform.operator_identity import Actor

HOLDER = "account_holder"  # the audit actor of what the product reports for the holder
IDENTITY_KINDS = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_IDENTITIES = 8

# (account id, day) recorded by this container: a repeat that day costs no call at all
_recorded_today: set[tuple[str, str]] = set()
_recorded_day: list[str] = []


def forget_recorded() -> None:
    _recorded_today.clear()
    _recorded_day.clear()


def valid_account_id(account_id: object) -> str:
    """An account id is an id (outbox.ID's shape): never an address or free text, since it appears
    in mail messages, audit events and operator listings."""
    if not isinstance(account_id, str) or not ID.fullmatch(account_id) or "@" in account_id:
        raise InvalidInput("account_id must be an id (letters, digits, . _ : # -)", fields={"account_id": "invalid"})
    return account_id


def valid_class(account_class: object) -> str:
    if account_class is None:
        return config.DEFAULT_ACCOUNT_CLASS
    if not isinstance(account_class, str) or not ID.fullmatch(account_class):
        raise InvalidInput("account_class must be an id", fields={"account_class": "invalid"})
    return account_class


def valid_identities(identities: object) -> dict[str, str] | None:
    if identities is None:
        return None
    if not isinstance(identities, Mapping) or len(identities) > MAX_IDENTITIES:
        raise InvalidInput("identities is an object of at most 8 ids", fields={"identities": "invalid"})
    found = {}
    for kind, value in identities.items():
        if not isinstance(kind, str) or not IDENTITY_KINDS.fullmatch(kind) or not isinstance(value, str):
            raise InvalidInput("identities maps a kind (user_id, ...) to an id", fields={"identities": "invalid"})
        if not 0 < len(value) <= 256:
            raise InvalidInput("an identity is 1 to 256 characters", fields={"identities": "invalid"})
        found[kind] = value
    return found or None


def valid_locale(locale: object) -> str | None:
    if locale is None:
        return None
    if locale not in config.SUPPORTED_LOCALES:
        raise InvalidInput(
            f"locale is one of {', '.join(config.SUPPORTED_LOCALES)}", fields={"locale": "invalid_choice"}
        )
    return str(locale)


def valid_email(email: object) -> str | None:
    if email is None:
        return None
    if not isinstance(email, str) or "@" not in email or len(email) > 254:
        raise InvalidInput("email is an address", fields={"email": "invalid"})
    return email.strip()


# ------------------------------------------------------------------ writes


def _index_actions(account_id: str, account_class: str | None, due: int, last_day: str | None) -> list[Action]:
    """The due-index entry at `due`, and (with `last_day`) the class listing's. Without a class
    (a report that names none) an existing account keeps its listing partition."""
    pk = AccountItem.key(account_id)
    keys = retention.lifecycle_index_keys(due, pk, AccountItem.SK)
    actions = [
        AccountItem.next_due_at.set(due),
        AccountItem.gsi2pk.set(keys["gsi2pk"]),
        AccountItem.gsi2sk.set(keys["gsi2sk"]),
    ]
    if last_day is not None:
        listing = f"ACCOUNTS#{account_class or config.DEFAULT_ACCOUNT_CLASS}"
        actions += [
            AccountItem.gsi1pk.set(listing if account_class else AccountItem.gsi1pk | listing),
            AccountItem.gsi1sk.set(f"{last_day}#{account_id}"),
        ]
    return actions


def _first_warning(account_class: str | None, day: str) -> int:
    """When an account last active on `day` is first due. A report naming no class may be about an
    account of any class: it is filed at the earliest class's warning, and the run, reading the
    account's own class, files it again at its own (rightsdesk.lifecycle.run, NOT_DUE)."""
    if account_class is not None:
        return int(rules.warn_at(account_class, day).timestamp())
    return min(int(rules.warn_at(name, day).timestamp()) for name in config.account_class_days())


def _holder_actions(email: str | None, locale: str | None, identities: dict[str, str] | None) -> list[Action]:
    actions: list[Action] = []
    if email is not None:
        actions += [AccountItem.email.set(email), AccountItem.email_hash.set(hashing.email_hash(email))]
    if locale is not None:
        actions.append(AccountItem.locale.set(locale))
    if identities is not None:
        actions.append(AccountItem.identities.set(identities))
    return actions


def _class_action(account_class: str | None) -> Action:
    """The class a report names, or (naming none) the one the account has, else the default."""
    if account_class is not None:
        return AccountItem.account_class.set(account_class)
    return AccountItem.account_class.set(AccountItem.account_class | config.DEFAULT_ACCOUNT_CLASS)


def record_activity(
    account_id: str,
    *,
    account_class: str | None = None,
    email: str | None = None,
    locale: str | None = None,
    identities: Mapping[str, str] | None = None,
    at: datetime | None = None,
) -> bool:
    """Record that the account was used at `at` (now); True if this wrote (the day's first report).
    An account not seen before is created (of `account_class`, else the default class)."""
    account_id = valid_account_id(account_id)
    chosen_class = valid_class(account_class) if account_class is not None else None
    email, locale, seeds = valid_email(email), valid_locale(locale), valid_identities(identities)
    at = at or clock.now()
    today = rules.day_of(at)
    if _recorded_day[:1] != [today]:
        forget_recorded()
        _recorded_day.append(today)
    if (account_id, today) in _recorded_today:
        return False
    item = AccountItem(AccountItem.key(account_id), AccountItem.SK)
    actions = [
        AccountItem.account_id.set(account_id),
        _class_action(chosen_class),
        AccountItem.created_at.set(AccountItem.created_at | at),
        AccountItem.state.set(rules.ACTIVE),
        AccountItem.last_active_day.set(today),
        AccountItem.last_active_at.set(at),
        AccountItem.warned_at.remove(),
        AccountItem.warning_queued_at.remove(),
        *_index_actions(account_id, chosen_class, _first_warning(chosen_class, today), today),
        *_holder_actions(email, locale, seeds),
    ]
    new_day = AccountItem.last_active_day.does_not_exist() | (AccountItem.last_active_day < today)
    try:
        item.update(
            actions=actions,
            condition=new_day & (AccountItem.state.does_not_exist() | (AccountItem.state == rules.ACTIVE)),
        )
        wrote = True
    except UpdateError as error:
        if not conditional_failure(error):
            raise
        wrote = _reactivate(item, actions, new_day, at)
    _recorded_today.add((account_id, today))
    if wrote and email is not None:
        _file_under_subject(account_id, hashing.email_hash(email))
    return wrote


def _reactivate(item: AccountItem, actions: list[Action], new_day, at: datetime) -> bool:
    """Activity on a warned account: back to active, its deletion called off, audited in the same
    write. False when the condition fails here too (the day's repeat, or a cancelled account)."""
    event = lifecycle_event(
        item.pk,
        action="deletion_cancelled",
        actor=HOLDER,
        at=at,
        from_status=rules.WARNED,
        to_status=rules.ACTIVE,
        cause="activity",
    )
    try:
        with transaction() as tx:
            tx.update(item, actions=actions, condition=new_day & (AccountItem.state == rules.WARNED))
            tx.save(event, condition=AuditEvent.sk.does_not_exist())
    except TransactWriteError as error:
        if conditional_failure(error):
            return False
        raise
    return True


def _file_under_subject(account_id: str, email_hash: str) -> None:
    AccountSubjectItem(
        AccountSubjectItem.key(email_hash), f"{AccountSubjectItem.SK_PREFIX}{account_id}", account_id=account_id
    ).save()


def record_cancellation(
    account_id: str,
    *,
    account_class: str | None = None,
    email: str | None = None,
    locale: str | None = None,
    identities: Mapping[str, str] | None = None,
    at: datetime | None = None,
) -> bool:
    """The holder cancelled the account: due for erasure at once (the next hourly run), promised by
    the end of the next business day (rules.cancel_by). True if recorded now, False if it was
    cancelled already."""
    account_id = valid_account_id(account_id)
    chosen_class = valid_class(account_class) if account_class is not None else None
    email, locale, seeds = valid_email(email), valid_locale(locale), valid_identities(identities)
    at = at or clock.now()
    item = AccountItem(AccountItem.key(account_id), AccountItem.SK)
    actions = [
        AccountItem.account_id.set(account_id),
        _class_action(chosen_class),
        AccountItem.created_at.set(AccountItem.created_at | at),
        AccountItem.state.set(rules.CANCELLED),
        AccountItem.cancelled_at.set(at),
        AccountItem.cancel_by.set(rules.cancel_by(at)),
        *_index_actions(account_id, chosen_class, int(at.timestamp()), None),
        *_holder_actions(email, locale, seeds),
    ]
    event = lifecycle_event(item.pk, action="account_cancelled", actor=HOLDER, at=at, to_status=rules.CANCELLED)
    try:
        with transaction() as tx:
            tx.update(
                item,
                actions=actions,
                condition=AccountItem.state.does_not_exist() | (AccountItem.state != rules.CANCELLED),
            )
            tx.save(event, condition=AuditEvent.sk.does_not_exist())
    except TransactWriteError as error:
        if conditional_failure(error):
            return False
        raise
    if email is not None:
        _file_under_subject(account_id, hashing.email_hash(email))
    return True


# ------------------------------------------------------------------ legal holds


def place_hold(account_id: str, reason: str, *, actor: Actor, until: datetime | None = None) -> AccountItem:
    """Nothing the lifecycle does touches a held account (no warning, no erasure) until released.
    The hold takes the account off the due index; the reason stays on the account only."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("a legal hold needs a reason", fields={"reason": "required"})
    account = get(account_id)
    now = clock.now()
    event = audit.event(account.pk, action="legal_hold_placed", actor=actor, at=now)
    try:
        with transaction() as tx:
            tx.update(
                account,
                actions=[
                    AccountItem.legal_hold.set(LegalHold(reason=reason, placed_at=now, until=until)),
                    AccountItem.gsi2pk.remove(),
                    AccountItem.gsi2sk.remove(),
                ],
                condition=AccountItem.pk.exists() & AccountItem.legal_hold.does_not_exist(),
            )
            tx.save(event, condition=AuditEvent.sk.does_not_exist())
    except TransactWriteError as error:
        if conditional_failure(error):
            raise Conflict(f"account {account_id} is already under a legal hold", code="already_held") from None
        raise
    return get(account_id)


def release_hold(account_id: str, *, actor: Actor) -> AccountItem:
    """End the hold: the account goes back on the due index at its next threshold (at once, if that
    passed while it was held)."""
    account = get(account_id)
    if account.legal_hold is None:
        raise Conflict(f"account {account_id} is not under a legal hold", code="not_held")
    now = clock.now()
    due = rules.next_due(snapshot(account))
    actions: list[Action] = [AccountItem.legal_hold.remove()]
    if due is not None:
        actions += _index_actions(account.account_id, account.account_class, due, None)
    event = audit.event(account.pk, action="legal_hold_released", actor=actor, at=now)
    try:
        with transaction() as tx:
            tx.update(account, actions=actions, condition=AccountItem.legal_hold.exists())
            tx.save(event, condition=AuditEvent.sk.does_not_exist())
    except TransactWriteError as error:
        if conditional_failure(error):
            raise Conflict(f"account {account_id} is not under a legal hold", code="not_held") from None
        raise
    return get(account_id)


# ------------------------------------------------------------------ reading


def find(account_id: str) -> AccountItem | None:
    try:
        return AccountItem.get(AccountItem.key(account_id), AccountItem.SK, consistent_read=True)
    except AccountItem.DoesNotExist:
        return None


def get(account_id: str) -> AccountItem:
    found = find(account_id)
    if found is None:
        raise NotFound(f"no account {account_id}")
    return found


def snapshot(account: AccountItem | None) -> rules.Snapshot | None:
    if account is None:
        return None
    return rules.Snapshot(
        state=account.state,
        account_class=account.account_class,
        last_active_day=account.last_active_day,
        warned_at=account.warned_at,
        held=account.legal_hold is not None,
        due_at=int(account.next_due_at) if account.next_due_at is not None else None,
        warning_unsent=account.state == rules.WARNED and bool(account.email) and account.warning_queued_at is None,
    )


def has_account(email_hash: str) -> bool:
    """Whether the subject holds an account (a customer), by keyed email hash: one query, ids only."""
    for entry in AccountSubjectItem.query(
        AccountSubjectItem.key(email_hash), AccountSubjectItem.sk.startswith(AccountSubjectItem.SK_PREFIX)
    ):
        if find(entry.account_id) is not None:
            return True
    return False


def inactive_since(day: str, account_class: str | None = None) -> list[AccountItem]:
    """Accounts whose last activity was before `day` (YYYY-MM-DD), oldest first, per class (GSI1),
    never a scan. Without a class, every configured class."""
    classes = [account_class] if account_class else list(config.account_class_days())
    found: list[AccountItem] = []
    for name in classes:
        found += list(AccountItem.by_class.query(f"ACCOUNTS#{name}", AccountItem.gsi1sk < day))
    return found


def view(account: AccountItem, *, personal: bool = False) -> dict:
    """The operator's view. Without `personal`, no address or ids of the holder (listings, logs)."""

    def when(value: datetime | None) -> str | None:
        return clock.isoformat(value) if value is not None else None

    snap = snapshot(account)
    due = rules.next_due(snap) if snap else None
    shown = {
        "account_id": account.account_id,
        "account_class": account.account_class,
        "state": account.state,
        "last_active_day": account.last_active_day,
        "created_at": when(account.created_at),
        "warned_at": when(account.warned_at),
        "cancelled_at": when(account.cancelled_at),
        "cancel_by": when(account.cancel_by),
        "next_step": (rules.Step.WARN.value if account.state == rules.ACTIVE else rules.Step.ERASE.value),
        "next_due_at": clock.isoformat(datetime.fromtimestamp(due, clock.now().tzinfo)) if due else None,
        "legal_hold": (
            {"reason": account.legal_hold.reason, "placed_at": when(account.legal_hold.placed_at)}
            if account.legal_hold is not None
            else None
        ),
        "has_address": account.email is not None,
        "locale": account.locale,
    }
    if personal:
        shown["email"] = account.email
        shown["identities"] = account.identities.as_dict() if account.identities is not None else None
    return shown


def warning_mail(account_id: str, period: str) -> tuple[str, str, dict] | None:
    """(address, language, context) of the inactivity warning for `period` (the last active day it
    is about), or None if there is nothing to send: the account is gone, has no address, was used
    since, or is no longer warned for that period."""
    account = find(account_id)
    if account is None or not account.email or account.state != rules.WARNED or account.warned_for != period:
        return None
    erase = rules.erase_at(account.account_class, period, account.warned_at)
    context = {
        "account_id": account.account_id,
        "last_active_day": period,
        "erase_at": clock.isoformat(erase),
        "keep_url": config.account_sign_in_url() or None,
    }
    return account.email, account.locale or config.DEFAULT_LOCALE, context
