"""Accounts of the operator's product and their activity (rightsdesk.lifecycle): what the
inactivity, cancellation and consent-expiry rules read and move."""

from __future__ import annotations

from pynamodb.attributes import (
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)

from rightsdesk.store.items.requests import LegalHold
from rightsdesk.store.items.table import ControllerIndex, _Item, _TableMeta


class AccountItem(_Item):
    """One account of one account class. Its holder's address (for the warning mail, and the
    erasure's seed) and the ids the connectors know the account by are personal data: they go with
    the account's erasure (Rule.ACCOUNT_RECORD). Activity is kept as one day per account (the
    first report of a UTC day writes; later ones that day fail their condition and write nothing).

    GSI2 (the lifecycle's due index, LIFE#<day bucket>): when the next threshold is due.
    GSI1 ACCOUNTS#<class> / <last active day>#<account id>: the class's accounts by last activity."""

    class Meta(_TableMeta):
        pass

    SK = "ACCOUNT"
    PERSONAL_FIELDS = ("email", "identities")

    account_id = UnicodeAttribute()
    account_class = UnicodeAttribute()
    state = UnicodeAttribute()  # active | warned | cancelled
    email = UnicodeAttribute(null=True)
    email_hash = UnicodeAttribute(null=True)
    locale = UnicodeAttribute(null=True)
    identities = MapAttribute(null=True)  # kind -> id, e.g. user_id, account_id (connectors' seeds)
    created_at = UTCDateTimeAttribute()
    last_active_day = UnicodeAttribute(null=True)  # YYYY-MM-DD (UTC)
    last_active_at = UTCDateTimeAttribute(null=True)  # the first report of that day
    warned_at = UTCDateTimeAttribute(null=True)
    warned_for = UnicodeAttribute(null=True)  # the last active day the warning was about: once per period
    # set once the warning's mail is queued (after the warning's write): a warned account without it
    # is warned again before anything is erased (rightsdesk.lifecycle.run)
    warning_queued_at = UTCDateTimeAttribute(null=True)
    cancelled_at = UTCDateTimeAttribute(null=True)
    cancel_by = UTCDateTimeAttribute(null=True)  # the business-day promise (rightsdesk.lifecycle.rules)
    next_due_at = NumberAttribute(null=True)  # epoch second of the next threshold, as indexed in GSI2
    legal_hold = LegalHold(null=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    by_class = ControllerIndex()

    @staticmethod
    def key(account_id: str) -> str:
        return f"ACCOUNT#{account_id}"


class AccountSubjectItem(_Item):
    """Files an account under its holder's keyed email hash (ACCTSUBJ#<hash> / ACCOUNT#<id>), so
    the consent expiry tells a customer from a non-customer without the address. Ids only."""

    class Meta(_TableMeta):
        pass

    SK_PREFIX = "ACCOUNT#"

    account_id = UnicodeAttribute()

    @staticmethod
    def key(email_hash: str) -> str:
        return f"ACCTSUBJ#{email_hash}"


class ErasureSeedItem(_Item):
    """The ids a lifecycle erasure starts from besides the request's address (REQ#<id> / SEED),
    for the execution's identity graph; kept until it ran, at most Rule.ERASURE_SEED."""

    class Meta(_TableMeta):
        pass

    SK = "SEED"
    PERSONAL_FIELDS = ("identities",)

    identities = MapAttribute(null=True)
    account_class = UnicodeAttribute(null=True)
    cause = UnicodeAttribute()  # inactivity | cancellation | consent_expiry
    created_at = UTCDateTimeAttribute()


class LifecycleState(_Item):
    """How far the lifecycle run got: every due-index bucket up to `swept_through` is done."""

    class Meta(_TableMeta):
        pass

    PK = "LIFECYCLE"
    SK = "STATE"

    swept_through = NumberAttribute()
    updated_at = UTCDateTimeAttribute()
