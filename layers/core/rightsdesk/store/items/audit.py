"""Audit events: what happened to an item, never personal data."""

from __future__ import annotations

from pynamodb.attributes import (
    MapAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)

from rightsdesk.store.items.table import ControllerIndex, _Item, _TableMeta


class OperatorRecord(MapAttribute):
    """Who an operator action's `actor="operator"` was (rightsdesk.platform.operator_identity): the
    account, the principal (role or user name, never a session name) and a keyed hash of the full ARN."""

    account = UnicodeAttribute()
    principal = UnicodeAttribute()
    arn_hash = UnicodeAttribute()


class AuditEvent(_Item):
    """Who did what to which record, when. Never personal data: ids, statuses and causes only."""

    class Meta(_TableMeta):
        pass

    SK_PREFIX = "AUDIT#"

    action = UnicodeAttribute()
    actor = UnicodeAttribute()
    operator = OperatorRecord(null=True)  # operator actions only; older events have none
    at = UTCDateTimeAttribute()
    from_status = UnicodeAttribute(null=True)
    to_status = UnicodeAttribute(null=True)
    cause = UnicodeAttribute(null=True)
    # deletion events (rightsdesk.store.deletion): the retention rule and the kind of item (its sk)
    rule = UnicodeAttribute(null=True)
    item_kind = UnicodeAttribute(null=True)
    # deletion events are also filed by month (GSI1 AUDIT#<yyyy-mm>): an auditor's query never scans
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    by_month = ControllerIndex()
