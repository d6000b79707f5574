"""Contacts: people who asked for mail from the platform itself, and the lists they are on.

A contact is filed by the keyed hash of its address (CONTACT#<hash>); the address is kept for
sending. Each list membership is an item of its own, filed in GSI1 under the list, so sending to
a list is a query, never a scan. Joining an optional list records a consent in the ledger
(rightsdesk.audience.consents) and leaving one records its withdrawal, in the same transaction as the
unsubscribe; the notifier asks `may_receive` before every list mail.

Lists:
- policy_notices: material (major) policy changes. Transactional: no unsubscribe link, because
  the law requires telling every concerned party.
- policy_updates: every published version, minor ones included. Optional: each mail carries a
  one-click unsubscribe link (rightsdesk.audience.unsubscribe).
- newsletter, marketing: the operator's own lists, by consent (rightsdesk.audience.newsletter).

A subject's restriction of processing or objection to it is a flag on the contact that
stops every optional list, until an operator lifts it; transactional mail still goes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from rightsdesk.audience import consents, suppression
from rightsdesk.kernel import clock, identifiers
from rightsdesk.kernel.errors import InvalidInput, NotFound
from rightsdesk.kernel.rights import Purpose
from rightsdesk.platform import hashing
from rightsdesk.platform.config import SUPPORTED_LOCALES
from rightsdesk.platform.operator_identity import Actor, actor_name
from rightsdesk.store import audit
from rightsdesk.store.deletion import conditional_failure, erase
from rightsdesk.store.items.audience import ContactItem, ListMemberItem
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.table import transaction


@dataclass(frozen=True)
class MailingList:
    name: str
    optional: bool  # optional lists carry List-Unsubscribe headers and a one-click link
    purpose: str | None = None  # the consent (rightsdesk.kernel.rights.Purpose) an optional list relies on


POLICY_NOTICES = MailingList("policy_notices", optional=False)
POLICY_UPDATES = MailingList("policy_updates", optional=True, purpose=Purpose.POLICY_NOTICES.value)
NEWSLETTER = MailingList("newsletter", optional=True, purpose=Purpose.NEWSLETTER.value)
MARKETING = MailingList("marketing", optional=True, purpose=Purpose.MARKETING.value)
LISTS: dict[str, MailingList] = {
    POLICY_NOTICES.name: POLICY_NOTICES,
    POLICY_UPDATES.name: POLICY_UPDATES,
    NEWSLETTER.name: NEWSLETTER,
    MARKETING.name: MARKETING,
}
RESTRICTION = "restriction"
OBJECTION = "objection"


@dataclass(frozen=True)
class Member:
    email_hash: str
    email: str
    locale: str


def mailing_list(name: str) -> MailingList:
    if name not in LISTS:
        raise InvalidInput(f"no list {name!r}; lists are {', '.join(LISTS)}", fields={"list": "invalid_choice"})
    return LISTS[name]


def list_partition(name: str) -> str:
    return f"LIST#{name}"


def _check(email: str, locale: str, lists: Iterable[str]) -> list[str]:
    problems = {}
    if not identifiers.is_valid_email(email):
        problems["email"] = "invalid_email"
    if locale not in SUPPORTED_LOCALES:
        problems["locale"] = "invalid_choice"
    names = sorted(set(lists))
    if not names or any(name not in LISTS for name in names):
        problems["list"] = "invalid_choice"
    if problems:
        raise InvalidInput("this contact cannot be added", fields=problems)
    return names


def subscribe(
    email: str,
    lists: Iterable[str],
    *,
    locale: str = "en",
    actor: Actor = "operator",
    at: datetime | None = None,
    source: str | None = None,
) -> str:
    """Add the contact (or update its locale) and put it on `lists`; returns its email hash.
    Joining a list by consent records the grant in the ledger, from `source` (default: the actor)."""
    email = identifiers.normalize_email(email)
    names = _check(email, locale, lists)
    at = at or clock.now()
    email_hash = hashing.email_hash(email)
    pk = ContactItem.key(email_hash)
    contact = ContactItem(pk, ContactItem.SK)
    # Three plain writes, not a transaction: each is idempotent, so an interrupted subscribe is
    # finished by repeating it, and a bulk import does not pay a transaction per contact.
    contact.update(
        actions=[
            ContactItem.email.set(email),
            ContactItem.locale.set(locale),
            ContactItem.subscriptions.add(set(names)),
            ContactItem.created_at.set(ContactItem.created_at | at),
            ContactItem.updated_at.set(at),
        ]
    )
    with ListMemberItem.batch_write() as batch:
        for name in names:
            batch.save(
                ListMemberItem(
                    pk,
                    f"{ListMemberItem.SK_PREFIX}{name}",
                    email=email,
                    locale=locale,
                    joined_at=at,
                    gsi1pk=list_partition(name),
                    gsi1sk=email_hash,
                )
            )
    audit.event(pk, action="subscribed", actor=actor, at=at, cause=",".join(names)).save(
        condition=AuditEvent.sk.does_not_exist()
    )
    consents.grant(
        email_hash, [LISTS[n].purpose for n in names if LISTS[n].purpose], source=source or actor_name(actor), at=at
    )
    return email_hash


def get(email_hash: str) -> ContactItem | None:
    try:
        return ContactItem.get(ContactItem.key(email_hash), ContactItem.SK, consistent_read=True)
    except DoesNotExist:
        return None


def members(list_name: str) -> Iterator[Member]:
    """Everyone on the list, in hash order (stable, so a resumed fan-out meets them in order)."""
    mailing_list(list_name)
    for item in ListMemberItem.members.query(list_partition(list_name)):
        yield Member(email_hash=item.gsi1sk, email=item.email, locale=item.locale)


def unsubscribe_writes(
    tx, email_hash: str, list_name: str, *, actor: Actor, at: datetime, source: str = consents.UNSUBSCRIBE_LINK
) -> None:
    """The writes that take a contact off a list, for the caller's transaction (the token's spend),
    with the withdrawal of the consent the list relies on."""
    pk = ContactItem.key(email_hash)
    purpose = mailing_list(list_name).purpose
    if purpose:
        consents.write(tx, email_hash, purpose, consents.WITHDRAWN, source=source, at=at)
    tx.delete(ListMemberItem(pk, f"{ListMemberItem.SK_PREFIX}{list_name}"))
    tx.update(
        ContactItem(pk, ContactItem.SK),
        actions=[ContactItem.subscriptions.delete({list_name}), ContactItem.updated_at.set(at)],
        condition=ContactItem.pk.exists(),
    )
    tx.save(
        audit.event(pk, action="unsubscribed", actor=actor, at=at, cause=list_name),
        condition=AuditEvent.sk.does_not_exist(),
    )


def forget_if_unsubscribed(email_hash: str) -> bool:
    """A contact on no list any more has no reason to be kept: delete it (its audit events stay).
    One that restricted or objected to processing stays, so that the flag outlives a new signup."""
    contact = ContactItem(ContactItem.key(email_hash), ContactItem.SK)
    unflagged = ContactItem.restricted_at.does_not_exist() & ContactItem.objected_at.does_not_exist()
    return erase(contact, ContactItem.subscriptions.does_not_exist() & unflagged)


# ------------------------------------------------------------------ the subject's rights


def list_for(purpose: str) -> MailingList | None:
    """The optional list that relies on consent to `purpose`, if any."""
    return next((mailing for mailing in LISTS.values() if mailing.purpose == purpose), None)


def leave_for_withdrawal(email_hash: str, purpose: str, *, source: str, at: datetime, actor: Actor = "subject") -> bool:
    """Take the contact off the list `purpose` feeds, with the ledger's withdrawal, in one write.
    False when it is on no such list: the caller records the withdrawal alone."""
    mailing = list_for(purpose)
    contact = get(email_hash)
    if mailing is None or contact is None or mailing.name not in (contact.subscriptions or set()):
        return False
    with transaction() as tx:
        unsubscribe_writes(tx, email_hash, mailing.name, actor=actor, at=at, source=source)
    return True


def withdraw_consent(
    email_hash: str, purposes: Iterable[str], *, source: str, at: datetime | None = None, actor: Actor = "subject"
) -> list[str]:
    """Withdraw consent to each purpose in the ledger, and leave the list it feeds; returns the lists left.
    `actor`: who recorded it (the subject, or an operator told by the subject)."""
    at = at or clock.now()
    left, alone = [], []
    for purpose in dict.fromkeys(purposes):
        if leave_for_withdrawal(email_hash, purpose, source=source, at=at, actor=actor):
            left.append(list_for(purpose).name)
        else:
            alone.append(purpose)
    # the lists' withdrawals were audited as `unsubscribed`; these get one `consent_withdrawn`
    consents.withdraw(email_hash, alone, source=source, actor=actor, at=at)
    if left:
        forget_if_unsubscribed(email_hash)
    return left


def may_receive(email_hash: str, list_name: str) -> bool:
    """Whether mail of this list may still go to the contact. Transactional lists always; an
    optional one not after a restriction or objection, a withdrawn consent or a suppression."""
    mailing = LISTS.get(list_name)
    if mailing is None:
        return False
    if not mailing.optional:
        return True
    contact = get(email_hash)
    if contact is not None and (contact.restricted_at is not None or contact.objected_at is not None):
        return False
    if mailing.purpose and consents.state(email_hash, mailing.purpose) == consents.WITHDRAWN:
        return False
    return not suppression.is_suppressed_hash(email_hash)


def _flag(kind: str):
    if kind not in (RESTRICTION, OBJECTION):
        raise ValueError(f"a processing flag is {RESTRICTION} or {OBJECTION}, not {kind!r}")
    return ContactItem.restricted_at if kind == RESTRICTION else ContactItem.objected_at


def limit_processing(
    email_hash: str, kind: str, *, actor: Actor, at: datetime | None = None, cause: str | None = None
) -> None:
    """Flag the subject's contact (created, without an address, if there is none: the flag must
    outlive a later signup). Flagging twice keeps the first time."""
    at = at or clock.now()
    attribute = _flag(kind)
    ContactItem(ContactItem.key(email_hash), ContactItem.SK).update(
        actions=[
            attribute.set(attribute | at),
            ContactItem.locale.set(ContactItem.locale | "en"),
            ContactItem.created_at.set(ContactItem.created_at | at),
            ContactItem.updated_at.set(at),
        ]
    )
    audit.event(ContactItem.key(email_hash), action=f"{kind}_set", actor=actor, at=at, cause=cause).save(
        condition=AuditEvent.sk.does_not_exist()
    )


def lift(email_hash: str, kind: str, *, actor: Actor, at: datetime | None = None) -> bool:
    """Lift a restriction or objection; False if the contact has no such flag."""
    at = at or clock.now()
    attribute = _flag(kind)
    pk = ContactItem.key(email_hash)
    try:
        with transaction() as tx:
            tx.update(
                ContactItem(pk, ContactItem.SK),
                actions=[attribute.remove(), ContactItem.updated_at.set(at)],
                condition=attribute.exists(),
            )
            tx.save(
                audit.event(pk, action=f"{kind}_lifted", actor=actor, at=at), condition=AuditEvent.sk.does_not_exist()
            )
    except TransactWriteError as error:
        if conditional_failure(error):
            return False
        raise
    return True


def rectify(
    email_hash: str,
    *,
    name: str | None = None,
    locale: str | None = None,
    actor: Actor,
    at: datetime | None = None,
    cause: str | None = None,
) -> ContactItem:
    """Correct the contact's name or language (its list memberships' language too)."""
    contact = get(email_hash)
    if contact is None:
        raise NotFound("this subject is not a contact: there is nothing of theirs to correct")
    if locale is not None and locale not in SUPPORTED_LOCALES:
        raise InvalidInput("no such language", fields={"locale": "invalid_choice"})
    at = at or clock.now()
    actions = [ContactItem.updated_at.set(at)]
    if name is not None:
        actions.append(ContactItem.name.set(name.strip()) if name.strip() else ContactItem.name.remove())
    if locale is not None:
        actions.append(ContactItem.locale.set(locale))
        for list_name in contact.subscriptions or set():
            ListMemberItem(contact.pk, f"{ListMemberItem.SK_PREFIX}{list_name}").update(
                actions=[ListMemberItem.locale.set(locale)], condition=ListMemberItem.pk.exists()
            )
    contact.update(actions=actions, condition=ContactItem.pk.exists())
    audit.event(contact.pk, action="rectified", actor=actor, at=at, cause=cause).save(
        condition=AuditEvent.sk.does_not_exist()
    )
    return contact


def view(contact: ContactItem) -> dict:
    """The contact as its subject may see it (exports); the CLI never prints it."""

    def when(value: datetime | None) -> str | None:
        return clock.isoformat(value) if value else None

    return {
        "email": contact.email,
        "name": contact.name,
        "locale": contact.locale,
        "subscriptions": sorted(contact.subscriptions or []),
        "suppressed": bool(contact.suppressed),
        "restricted_since": when(contact.restricted_at),
        "objected_since": when(contact.objected_at),
        "created_at": when(contact.created_at),
        "updated_at": when(contact.updated_at),
    }
