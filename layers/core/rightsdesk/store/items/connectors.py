"""Stored connector definitions (rightsdesk.connectors.registry) and the set they form."""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UnicodeSetAttribute, UTCDateTimeAttribute

from rightsdesk.store.items.table import _Item, _TableMeta


class ConnectorItem(_Item):
    """One connector definition, under CONNECTOR#<id> / CONNECTOR.

    `definition` is the validated definition as JSON (rightsdesk.connectors.definitions), without
    its `enabled` flag: `state` says that, once. It holds no secret (a role is assumed at run time,
    an HTTP signing secret is named by its ARN). Kept until the operator removes it."""

    class Meta(_TableMeta):
        pass

    SK = "CONNECTOR"

    connector_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    definition = UnicodeAttribute()
    state = UnicodeAttribute()  # disabled (runs dry: finds and plans, never writes) | enabled
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    state_changed_at = UTCDateTimeAttribute(null=True)

    @staticmethod
    def key(connector_id: str) -> str:
        return f"CONNECTOR#{connector_id}"


class ConnectorSetItem(_Item):
    """CONNECTORS / SET: the ids of every stored connector, and a version every add and remove
    moves on (conditionally), so the identity graph checked over the set is the graph written."""

    class Meta(_TableMeta):
        pass

    PK = "CONNECTORS"
    SK = "SET"

    ids = UnicodeSetAttribute(null=True)
    version = NumberAttribute(default=0)
