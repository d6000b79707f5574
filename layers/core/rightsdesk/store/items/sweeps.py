"""How far the retention sweeper got."""

from __future__ import annotations

from pynamodb.attributes import (
    NumberAttribute,
    UTCDateTimeAttribute,
)

from rightsdesk.store.items.table import _Item, _TableMeta


class SweepState(_Item):
    """How far the retention sweeper got: every expiry bucket up to `swept_through` is done."""

    class Meta(_TableMeta):
        pass

    PK = "SWEEP"
    SK = "STATE"

    swept_through = NumberAttribute()
    updated_at = UTCDateTimeAttribute()
