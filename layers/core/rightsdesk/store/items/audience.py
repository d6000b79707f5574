"""The operator's audience: contacts, list memberships, suppressions, issues, spent unsubscribe tokens and consents."""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)

from rightsdesk.store.items.table import ControllerIndex, _Item, _TableMeta


class ContactItem(_Item):
    """Someone who asked for mail from us (policy notices, optional lists), by keyed email hash."""

    class Meta(_TableMeta):
        pass

    SK = "CONTACT"

    email = UnicodeAttribute()
    locale = UnicodeAttribute(default="en")
    subscriptions = UnicodeSetAttribute(null=True)
    suppressed = BooleanAttribute(default=False)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    # a name the subject may have corrected, and the subject's restriction of processing
    # or objection to it (either stops every optional list; rightsdesk.audience.contacts.may_receive)
    name = UnicodeAttribute(null=True)
    restricted_at = UTCDateTimeAttribute(null=True)
    objected_at = UTCDateTimeAttribute(null=True)

    @staticmethod
    def key(email_hash: str) -> str:
        return f"CONTACT#{email_hash}"


class ListMemberItem(_Item):
    """A contact's membership of one list, filed in GSI1 under the list so a fan-out never scans."""

    class Meta(_TableMeta):
        pass

    SK_PREFIX = "LIST#"

    email = UnicodeAttribute()
    locale = UnicodeAttribute(default="en")
    joined_at = UTCDateTimeAttribute()
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    members = ControllerIndex()


class SuppressionItem(_Item):
    """An address SES reported as bouncing or complaining, by keyed hash: notices skip it."""

    class Meta(_TableMeta):
        pass

    SK = "SUPPRESSION"

    reason = UnicodeAttribute()  # bounce | complaint
    first_at = UTCDateTimeAttribute()
    last_at = UTCDateTimeAttribute()
    events = NumberAttribute(default=0)

    @staticmethod
    def key(email_hash: str) -> str:
        return f"SUPPRESS#{email_hash}"


class ListIssueItem(_Item):
    """One issue of an optional list (rightsdesk.audience.newsletter): what the operator wrote, read by the
    notifier when it sends each member's mail (queue messages carry ids only). No address."""

    class Meta(_TableMeta):
        pass

    SK = "ISSUE"

    list_name = UnicodeAttribute()
    issue = UnicodeAttribute()
    subject = UnicodeAttribute()
    body = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()

    @staticmethod
    def key(digest: str) -> str:
        return f"ISSUE#{digest}"


class SpentTokenItem(_Item):
    """An unsubscribe token that was used: its nonce, so the token works once."""

    class Meta(_TableMeta):
        pass

    SK = "SPENT"

    list_name = UnicodeAttribute()
    spent_at = UTCDateTimeAttribute()

    @staticmethod
    def key(nonce: str) -> str:
        return f"UNSUB#{nonce}"


class ConsentChange(MapAttribute):
    state = UnicodeAttribute()  # granted | withdrawn
    at = UTCDateTimeAttribute()
    source = UnicodeAttribute()
    # What carried the change, by id (`request:<id>`, `controller:<id>`), when `source` is a kind of
    # signal (gpc) rather than the request itself; and, for a withdrawal that went against an earlier
    # explicit grant, that grant (`granted:<source>@<iso time>`): the conflict, named, never silent.
    ref = UnicodeAttribute(null=True)
    overrides = UnicodeAttribute(null=True)
    # Who recorded a change made for the subject by someone else, as audit events name actors
    # (`operator`); who exactly is on its audit event (`consent_granted`), not here: the ledger is
    # the subject's, shown in their export. Older changes, and the subject's own, carry none.
    by = UnicodeAttribute(null=True)


class ConsentItem(_Item):
    """One subject's consent to one purpose, in the contact partition (rightsdesk.audience.consents): the state
    now, when and from where it got there, and the changes before. Keyed by hash: no address."""

    class Meta(_TableMeta):
        pass

    SK_PREFIX = "CONSENT#"

    purpose = UnicodeAttribute()
    state = UnicodeAttribute()
    granted_at = UTCDateTimeAttribute(null=True)
    granted_source = UnicodeAttribute(null=True)
    withdrawn_at = UTCDateTimeAttribute(null=True)
    withdrawn_source = UnicodeAttribute(null=True)
    history = ListAttribute(of=ConsentChange, null=True)
    updated_at = UTCDateTimeAttribute()


class GpcSignalItem(_Item):
    """A visitor's Global Privacy Control signal a controller forwarded (rightsdesk.audience.gpc): one
    per controller and visitor, filed under the visitor's keyed hash, which the controller's id is
    part of (another controller's same visitor id is another item). The visitor id itself is never
    stored. The visitor's ledger entries (CONSENT#<purpose>) share its partition."""

    class Meta(_TableMeta):
        pass

    SK = "GPC"

    signal_id = UnicodeAttribute()
    controller_id = UnicodeAttribute()
    received_at = UTCDateTimeAttribute()
    seen_at = UTCDateTimeAttribute(null=True)  # when the site saw the signal, as it says
    purposes = ListAttribute(of=UnicodeAttribute)
    conflicts = ListAttribute(of=UnicodeAttribute, null=True)  # earlier grants it went against
    webhook_outcome = UnicodeAttribute(null=True)  # delivered | disabled | failed, once known
    webhook_at = UTCDateTimeAttribute(null=True)

    @staticmethod
    def key(signal_id: str) -> str:
        return f"GPC#{signal_id}"
