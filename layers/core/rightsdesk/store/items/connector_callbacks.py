"""One-time callback URLs of HTTP connectors (rightsdesk.connectors.callbacks): one item per offer.

Keys:
  CALLBACK#<callback id>  CALLBACK   the offer: which run's step it completes, the keyed hash of the
                                     URL's secret (never the secret), the Step Functions task token
                                     (removed once used), the deadline and what the find counted
GSI2: CALLBACKDUE / <deadline ISO>#<callback id>: open offers by deadline, so the worker's schedule
fails the steps whose callback never came by reading only those (never a scan); removed once used.

Ids, states, counts and keyed hashes only. Deleted by TTL a day after the deadline (until then a
second call is told the URL was used or has expired).
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute

from rightsdesk.store.items.table import _Item, _TableMeta

CALLBACK_DUE_INDEX_KEY = "CALLBACKDUE"


class ConnectorCallbackItem(_Item):
    class Meta(_TableMeta):
        pass

    PK_PREFIX = "CALLBACK#"
    SK = "CALLBACK"

    callback_id = UnicodeAttribute()
    request_id = UnicodeAttribute()
    execution_id = UnicodeAttribute()
    run = NumberAttribute()
    connector_id = UnicodeAttribute()
    attempt = NumberAttribute(default=1)  # the step's attempt that offered it
    action = UnicodeAttribute()  # erase | export
    secret_hash = UnicodeAttribute()
    task_token = UnicodeAttribute(null=True)
    state = UnicodeAttribute()  # open | used | expired
    offered_at = UTCDateTimeAttribute()
    deadline = UTCDateTimeAttribute()
    used_at = UTCDateTimeAttribute(null=True)
    # JSON: what the step's find saw (found, touched key hashes, identity hashes, started_at)
    partial = UnicodeAttribute(null=True)

    @classmethod
    def key(cls, callback_id: str) -> str:
        return f"{cls.PK_PREFIX}{callback_id}"
