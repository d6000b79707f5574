"""Breach incidents, their per-recipient notices, and published policy versions."""

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


class Tally(MapAttribute):
    """How many notices of one kind of recipient are in each status (rightsdesk.notices.breaches)."""

    pending = NumberAttribute(default=0)
    sent = NumberAttribute(default=0)
    failed = NumberAttribute(default=0)
    suppressed = NumberAttribute(default=0)


class IncidentItem(_Item):
    """A personal-data breach. Holds only what the operator typed, ids and dates; no recipient."""

    class Meta(_TableMeta):
        pass

    SK = "INCIDENT"
    PARTITION = "INCIDENTS"

    incident_id = UnicodeAttribute()
    detected_at = UTCDateTimeAttribute()
    declared_at = UTCDateTimeAttribute()
    declared_by = UnicodeAttribute()
    summary = UnicodeAttribute()
    categories = ListAttribute(of=UnicodeAttribute)
    consequences = UnicodeAttribute(null=True)
    measures = UnicodeAttribute(null=True)
    contact = UnicodeAttribute()
    high_risk = BooleanAttribute(default=False)
    notify_subjects = BooleanAttribute(default=False)
    controller_ids = ListAttribute(of=UnicodeAttribute)
    controllers_due_at = UTCDateTimeAttribute()
    authority_due_at = UTCDateTimeAttribute()
    authority_notified_at = UTCDateTimeAttribute(null=True)
    authority_reference = UnicodeAttribute(null=True)
    # when the last notice of each kind was sent or suppressed, none pending or failed (rightsdesk.notices.breaches.tally):
    # what the controllers' and subjects' deadlines are read against, kept after the notices expire
    controllers_notified_at = UTCDateTimeAttribute(null=True)
    subjects_notified_at = UTCDateTimeAttribute(null=True)
    # deadline (controllers | subjects | authority) -> the operator's reasons for a late notification
    # (GDPR Art. 33(1)): operator-typed text, no recipient
    delay_reasons = MapAttribute(null=True)
    controllers = Tally(default=dict)
    subjects = Tally(default=dict)
    webhooks_queued = NumberAttribute(default=0)
    # operator warnings already queued (rightsdesk.notices.breach_watch), each sent once
    warnings_sent = UnicodeSetAttribute(null=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    listing = ControllerIndex()

    @staticmethod
    def key(incident_id: str) -> str:
        return f"INCIDENT#{incident_id}"


class NoticeItem(_Item):
    """One recipient of a breach notice: the only place its address is kept (rule breach_recipient)."""

    class Meta(_TableMeta):
        pass

    SK_PREFIX = "NOTICE#"

    incident_id = UnicodeAttribute()
    kind = UnicodeAttribute()  # controller | subject
    recipient = UnicodeAttribute()  # a controller id, or a subject's keyed email hash
    email = UnicodeAttribute()
    locale = UnicodeAttribute(default="en")
    controller_ids = ListAttribute(of=UnicodeAttribute)
    status = UnicodeAttribute()  # pending | sent | failed | suppressed
    mail_id = UnicodeAttribute()
    updated_at = UTCDateTimeAttribute()
    sent_at = UTCDateTimeAttribute(null=True)
    # A controller delivering by webhook also gets a `breach.notice` event; the mail above is the
    # notice all the same. delivered | failed | disabled (the endpoint answered 410), set by the dispatcher.
    webhook = UnicodeAttribute(null=True)
    webhook_at = UTCDateTimeAttribute(null=True)

    @staticmethod
    def sort_key(kind: str, recipient: str) -> str:
        return f"NOTICE#{kind}#{recipient}"


class PolicyVersionItem(_Item):
    """One published version of a policy document; never changed once published."""

    class Meta(_TableMeta):
        pass

    SK_PREFIX = "VERSION#"
    PARTITION = "POLICIES"

    doc = UnicodeAttribute()
    version = UnicodeAttribute()
    url = UnicodeAttribute()
    summaries = MapAttribute(default=dict)  # locale -> summary text (Markdown as typed)
    major = BooleanAttribute(default=False)
    effective_at = UTCDateTimeAttribute()
    published_at = UTCDateTimeAttribute()
    published_by = UnicodeAttribute()
    content_hash = UnicodeAttribute()
    # SHA-256 (hex) of the document's text as published, recorded once: proof of what was in force
    text_sha256 = UnicodeAttribute(null=True)
    text_bytes = NumberAttribute(null=True)
    recipients_queued = NumberAttribute(default=0)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    listing = ControllerIndex()

    @staticmethod
    def key(doc: str) -> str:
        return f"POLICY#{doc}"
