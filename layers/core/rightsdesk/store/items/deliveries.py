"""The webhook delivery log: one item per attempt, one per delivery (its latest state).

Both live in the controller's own partition `DLOG#<controller id>`, so a controller's log is one
query on a key and never another controller's. No body, no header value, no URL: ids, event
types, HTTP statuses, timings and outcome words only (retention rule delivery_attempt, TTL).

  DLOG#<controller>  ATTEMPT#<at>#<n>       one attempt, newest last in key order
  DLOG#<controller>  DELIVERY#<webhook id>  the delivery: what it is about, its latest outcome,
                                            a redelivery waiting in the queue
GSI1 of a delivery: DLOG#<controller>#<latest outcome> / <latest at>#<webhook id>, so "every
delivery that failed since T" is a query per outcome, never a scan.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute

from rightsdesk.store.items.table import ControllerIndex, _Item, _TableMeta


class DeliveryAttemptItem(_Item):
    class Meta(_TableMeta):
        pass

    SK_PREFIX = "ATTEMPT#"

    controller_id = UnicodeAttribute()
    webhook_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    message_event = UnicodeAttribute()
    request_id = UnicodeAttribute(null=True)
    notice = UnicodeAttribute(null=True)
    incident_id = UnicodeAttribute(null=True)
    doc = UnicodeAttribute(null=True)
    version = UnicodeAttribute(null=True)
    signal_id = UnicodeAttribute(null=True)
    execution_id = UnicodeAttribute(null=True)
    attempt_id = UnicodeAttribute()
    at = UTCDateTimeAttribute()
    attempt = NumberAttribute()  # the queue message's receive count: 1 on the first try
    outcome = UnicodeAttribute()  # delivered | retrying | exhausted | failed
    http_status = NumberAttribute(null=True)
    latency_ms = NumberAttribute(null=True)
    error_class = UnicodeAttribute(null=True)
    redelivery_id = UnicodeAttribute(null=True)

    @staticmethod
    def key(controller_id: str) -> str:
        return f"DLOG#{controller_id}"


class DeliveryItem(_Item):
    class Meta(_TableMeta):
        pass

    SK_PREFIX = "DELIVERY#"

    event_type = UnicodeAttribute()
    message_event = UnicodeAttribute()
    request_id = UnicodeAttribute(null=True)
    notice = UnicodeAttribute(null=True)
    incident_id = UnicodeAttribute(null=True)
    doc = UnicodeAttribute(null=True)
    version = UnicodeAttribute(null=True)
    signal_id = UnicodeAttribute(null=True)
    execution_id = UnicodeAttribute(null=True)
    last_at = UTCDateTimeAttribute()
    last_outcome = UnicodeAttribute()
    last_http_status = NumberAttribute(null=True)
    last_error_class = UnicodeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    # a redelivery the controller asked for and the dispatcher has not attempted yet (its id, when)
    redelivery_id = UnicodeAttribute(null=True)
    redelivery_asked_at = UTCDateTimeAttribute(null=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    by_outcome = ControllerIndex()

    @staticmethod
    def sort_key(webhook_id: str) -> str:
        return f"{DeliveryItem.SK_PREFIX}{webhook_id}"

    # Both are in the keys: not stored twice on a write of the hot path.
    @property
    def controller_id(self) -> str:
        return self.pk.removeprefix("DLOG#")

    @property
    def webhook_id(self) -> str:
        return self.sk.removeprefix(self.SK_PREFIX)

    @staticmethod
    def outcome_partition(controller_id: str, outcome: str) -> str:
        return f"DLOG#{controller_id}#{outcome}"
