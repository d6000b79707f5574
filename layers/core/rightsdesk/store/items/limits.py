"""Abuse-guard windows and limit counters (keyed hashes, never addresses)."""

from __future__ import annotations

from pynamodb.attributes import (
    NumberAttribute,
    UnicodeAttribute,
)

from rightsdesk.store.items.table import _Item, _TableMeta


class GuardItem(_Item):
    """Failed attempts from one source (a keyed hash) in one time window (rightsdesk.intake.guard)."""

    class Meta(_TableMeta):
        pass

    failures = NumberAttribute(default=0)


class LimitCounterItem(_Item):
    """What one address, source or request used of one limit in one window (rightsdesk.store.limits):
    keyed by a keyed hash (or a request id), never by the address itself."""

    class Meta(_TableMeta):
        pass

    used = NumberAttribute(default=0)
    # keyed hash of the last note mailed to a subject in this window (repeated notes collapse)
    last_note = UnicodeAttribute(null=True)
