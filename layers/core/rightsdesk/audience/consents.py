"""The consent ledger: per subject (keyed hash of the normalized address) and purpose, whether
consent is granted or withdrawn, since when, and from where.

One item per subject and purpose, in the subject's contact partition (CONTACT#<hash> /
CONSENT#<purpose>): the state now and every change before it (`history`). No address is stored
here; the hash is the key.

A withdrawal applies at once: it takes the subject off the mailing list that purpose feeds, in the
same transaction (rightsdesk.audience.contacts.withdraw_consent: the lists know the ledger, the ledger
knows no lists), and the notifier asks the ledger again before every list mail
(contacts.may_receive), so a mail queued just before the withdrawal is not sent either.

A Global Privacy Control signal (rightsdesk.audience.gpc) withdraws through `withdraw_by_signal`: it
never overrides an explicit grant silently. The withdrawal is recorded (the signal is a valid opt-out),
and the change names the grant it went against (`overrides`), with an audit event `consent_conflict`
in the same write: the operator sees both in `rightsdesk consents show`.

Retention (Rule.CONSENT_RECORD): a record is kept while the consent is in use and for five years
after its withdrawal, as proof of what the subject allowed and when they stopped it. A withdrawal
schedules the deletion; a new grant takes it back. Every record carries the rule, so its deletion
(by the sweeper, the TTL or an erasure) gets an audit event from the stream handler.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import InvalidInput
from rightsdesk.kernel.rights import PURPOSES
from rightsdesk.store import audit
from rightsdesk.store.deletion import conditional_failure
from rightsdesk.store.items.audience import ConsentChange, ConsentItem, ContactItem
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.table import transaction

if TYPE_CHECKING:
    from rightsdesk.platform.operator_identity import Actor

GRANTED = "granted"
WITHDRAWN = "withdrawn"
# Where a change came from; the request id follows `request:` (ids are not personal data).
UNSUBSCRIBE_LINK = "unsubscribe_link"
GRANTED_AUDIT = "consent_granted"  # an operator recorded a grant given outside rightsdesk (grant_by)
WITHDRAWN_AUDIT = "consent_withdrawn"  # a withdrawal with no list to leave (withdraw); a list's: `unsubscribed`


def _item(email_hash: str, purpose: str) -> ConsentItem:
    return _item_in(ContactItem.key(email_hash), purpose)


def _item_in(partition: str, purpose: str) -> ConsentItem:
    if purpose not in PURPOSES:
        raise InvalidInput(
            f"no purpose {purpose!r}; purposes are {', '.join(PURPOSES)}", fields={"purpose": "invalid_choice"}
        )
    return ConsentItem(partition, f"{ConsentItem.SK_PREFIX}{purpose}")


def _actions(
    item: ConsentItem,
    state: str,
    source: str,
    at: datetime,
    *,
    ref: str | None = None,
    overrides: str | None = None,
    by: str | None = None,
) -> list[Action]:
    purpose = item.sk.removeprefix(ConsentItem.SK_PREFIX)
    change = ConsentChange(state=state, at=at, source=source, ref=ref, overrides=overrides, by=by)
    actions = [
        ConsentItem.purpose.set(purpose),
        ConsentItem.state.set(state),
        ConsentItem.updated_at.set(at),
        ConsentItem.history.set((ConsentItem.history | []).append([change])),
    ]
    if state == GRANTED:
        # In use again: nothing is due to the sweeper, and the record stays until the next
        # withdrawal, or until the consent expires (five years after it was given, for a subject
        # without an account: rightsdesk.lifecycle finds it then on its own due index).
        expiry = (
            [
                getattr(ConsentItem, name).set(value)
                for name, value in retention.lifecycle_index_keys(
                    retention.expires_at(retention.Rule.CONSENT_RECORD, at), item.pk, item.sk
                ).items()
            ]
            if item.pk.startswith(ContactItem.key(""))
            else [ConsentItem.gsi2pk.remove(), ConsentItem.gsi2sk.remove()]
        )
        return actions + [
            ConsentItem.granted_at.set(at),
            ConsentItem.granted_source.set(source),
            ConsentItem.retention_rule.set(retention.Rule.CONSENT_RECORD.value),
            ConsentItem.retention_due_at.remove(),
            *expiry,
            ConsentItem.expires_at.remove(),
        ]
    return actions + [
        ConsentItem.withdrawn_at.set(at),
        ConsentItem.withdrawn_source.set(source),
        ConsentItem.expires_at.set(retention.expires_at(retention.Rule.CONSENT_RECORD, at)),
        *retention.schedule_actions(item, retention.Rule.CONSENT_RECORD, at),
    ]


def write(tx: TransactWrite, email_hash: str, purpose: str, state: str, *, source: str, at: datetime) -> None:
    """The ledger's write of one change, for the caller's transaction."""
    item = _item(email_hash, purpose)
    tx.update(item, actions=_actions(item, state, source, at))


def record(email_hash: str, purpose: str, state: str, *, source: str, at: datetime | None = None) -> None:
    """Record one change on its own (no list to leave or join)."""
    if state not in (GRANTED, WITHDRAWN):
        raise ValueError(f"a consent is {GRANTED} or {WITHDRAWN}, not {state!r}")
    item = _item(email_hash, purpose)
    item.update(actions=_actions(item, state, source, at or clock.now()))


def grant(email_hash: str, purposes: Iterable[str], *, source: str, at: datetime | None = None) -> None:
    """The ledger's grants alone, for a caller whose own audit event records them (a list signup:
    rightsdesk.audience.contacts.subscribe writes `subscribed`)."""
    for purpose in purposes:
        record(email_hash, purpose, GRANTED, source=source, at=at)


def grant_by(
    email_hash: str, purposes: Iterable[str], *, source: str, actor: Actor, at: datetime | None = None
) -> list[str]:
    """Record consent the subject gave outside rightsdesk, told to `actor` (an operator): each
    purpose's grant, naming who recorded it (`by`), and one audit event `consent_granted` on the
    contact (cause: the purposes; who exactly: its operator), in one transaction. The source stays
    on the ledger only: it is the operator's free text, and audit events outlive the ledger (an
    erasure deletes it). Returns the purposes granted."""
    granted = list(dict.fromkeys(purposes))
    if not granted:
        raise InvalidInput("name at least one purpose", fields={"purpose": "required"})
    items = [_item(email_hash, purpose) for purpose in granted]  # an unknown purpose is refused before any write
    from rightsdesk.platform.operator_identity import actor_name  # an operator's path: not at the APIs' start

    at = at or clock.now()
    by = actor_name(actor)
    event = audit.event(ContactItem.key(email_hash), action=GRANTED_AUDIT, actor=actor, at=at, cause=",".join(granted))
    with transaction() as tx:
        for item in items:
            tx.update(item, actions=_actions(item, GRANTED, source, at, by=by))
        tx.save(event, condition=AuditEvent.sk.does_not_exist())
    return granted


def withdraw(
    email_hash: str, purposes: Iterable[str], *, source: str, actor: Actor, at: datetime | None = None
) -> None:
    """Withdrawals with no list to leave (rightsdesk.audience.contacts.withdraw_consent: a list's
    is recorded with its unsubscribe): each purpose's withdrawal and one audit event
    `consent_withdrawn` on the contact (cause: the purposes), in one transaction. An operator who
    records it is named on the ledger's change (`by`), as for a grant."""
    withdrawn = list(dict.fromkeys(purposes))
    if not withdrawn:
        return
    items = [_item(email_hash, purpose) for purpose in withdrawn]
    from rightsdesk.platform.operator_identity import actor_name, operator_of  # not at the APIs' start

    at = at or clock.now()
    by = actor_name(actor) if operator_of(actor) is not None else None
    event = audit.event(
        ContactItem.key(email_hash), action=WITHDRAWN_AUDIT, actor=actor, at=at, cause=",".join(withdrawn)
    )
    with transaction() as tx:
        for item in items:
            tx.update(item, actions=_actions(item, WITHDRAWN, source, at, by=by))
        tx.save(event, condition=AuditEvent.sk.does_not_exist())


# ------------------------------------------------------------------ a signal's withdrawal


def grant_named(item: ConsentItem) -> str:
    """How a conflict names the grant it went against: `granted:<source>@<when>`."""
    when = clock.isoformat(item.granted_at) if item.granted_at else "unknown"
    return f"granted:{item.granted_source or 'unknown'}@{when}"


def withdraw_by_signal(
    partition: str, purposes: Iterable[str], *, source: str, ref: str, at: datetime, actor: Actor
) -> tuple[list[str], dict[str, str]]:
    """Withdraw each purpose in the ledger at `partition` for a signal (source `gpc`, carried by
    `ref`). A purpose withdrawn already is left as it is: the same signal twice is one withdrawal.
    A purpose granted before is withdrawn too (the signal is a valid opt-out) and the change names
    that grant, with an audit event in the same write. Each write is conditional on the state read,
    so a grant made in between is not overwritten unseen (that purpose is read and decided again).
    Returns the purposes withdrawn now, and the grants overridden by purpose."""
    withdrawn: list[str] = []
    conflicts: dict[str, str] = {}
    for purpose in dict.fromkeys(purposes):
        for _ in range(3):
            outcome = _withdraw_one(partition, purpose, source=source, ref=ref, at=at, actor=actor)
            if outcome is not None:
                break
        else:
            raise RuntimeError("the consent changed three times while a signal was recorded")
        changed, overridden = outcome
        if changed:
            withdrawn.append(purpose)
        if overridden:
            conflicts[purpose] = overridden
    return withdrawn, conflicts


def _withdraw_one(
    partition: str, purpose: str, *, source: str, ref: str, at: datetime, actor: Actor
) -> tuple[bool, str | None] | None:
    """(withdrawn now, the grant overridden), or None if the record changed under us."""
    item = _item_in(partition, purpose)
    current = retention.live_item(ConsentItem, item.pk, item.sk, consistent_read=True)
    if current is not None and current.state == WITHDRAWN:
        return False, None
    overridden = grant_named(current) if current is not None else None
    unchanged = ConsentItem.updated_at == current.updated_at if current is not None else ConsentItem.pk.does_not_exist()
    try:
        with transaction() as tx:
            tx.update(
                item,
                actions=_actions(item, WITHDRAWN, source, at, ref=ref, overrides=overridden),
                condition=unchanged,
            )
            if overridden:
                conflict = audit.event(
                    partition, action="consent_conflict", actor=actor, at=at, cause=f"{purpose}:{source}>{overridden}"
                )
                tx.save(conflict, condition=AuditEvent.sk.does_not_exist())
    except TransactWriteError as error:
        if conditional_failure(error):
            return None
        raise
    return True, overridden


# ------------------------------------------------------------------ reading


def ledger(email_hash: str) -> list[ConsentItem]:
    """Every purpose the subject ever granted or withdrawn, still within its retention time."""
    return ledger_at(ContactItem.key(email_hash))


def ledger_at(partition: str) -> list[ConsentItem]:
    """The ledger entries filed in one partition (a contact's, or a GPC visitor's)."""
    found = ConsentItem.query(partition, ConsentItem.sk.startswith(ConsentItem.SK_PREFIX), consistent_read=True)
    return [item for item in found if retention.is_live(item)]


def state(email_hash: str, purpose: str) -> str | None:
    """granted, withdrawn, or None when the ledger has no record of that purpose."""
    item = retention.live_item(
        ConsentItem, ContactItem.key(email_hash), f"{ConsentItem.SK_PREFIX}{purpose}", consistent_read=True
    )
    return item.state if item is not None else None


def view(item: ConsentItem) -> dict:
    def when(value: datetime | None) -> str | None:
        return clock.isoformat(value) if value else None

    return {
        "purpose": item.purpose,
        "state": item.state,
        "granted_at": when(item.granted_at),
        "granted_source": item.granted_source,
        "withdrawn_at": when(item.withdrawn_at),
        "withdrawn_source": item.withdrawn_source,
        "history": [
            {
                "state": change.state,
                "at": clock.isoformat(change.at),
                "source": change.source,
                **({"ref": change.ref} if change.ref else {}),
                **({"overrides": change.overrides} if change.overrides else {}),
                **({"by": change.by} if change.by else {}),
            }
            for change in item.history or []
        ],
    }
