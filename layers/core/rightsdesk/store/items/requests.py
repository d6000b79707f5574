"""A subject's request and what hangs off it: the challenge, the yearly counter, the operator's index of its own requests."""

from __future__ import annotations

from collections.abc import Mapping

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


class LegalHold(MapAttribute):
    reason = UnicodeAttribute()
    placed_at = UTCDateTimeAttribute()
    until = UTCDateTimeAttribute(null=True)


class RequestItem(_Item):
    class Meta(_TableMeta):
        pass

    SK = "REQUEST"
    PERSONAL_FIELDS = ("email", "name", "details")
    # What a purge removes: the personal fields, and text typed for a mail to the subject.
    PURGED_FIELDS = (*PERSONAL_FIELDS, "mail_note")

    request_id = UnicodeAttribute()
    controller_id = UnicodeAttribute()
    site = UnicodeAttribute()
    request_type = UnicodeAttribute()
    status = UnicodeAttribute()
    locale = UnicodeAttribute(default="en")
    relationship = UnicodeAttribute(default="self")
    purposes = ListAttribute(of=UnicodeAttribute, null=True)
    flags = ListAttribute(of=UnicodeAttribute, null=True)
    # The submission carried `Sec-GPC: 1`: its withdrawal is recorded once the address is verified
    # (rightsdesk.audience.gpc.record_for_request), never before. A flag, no personal data.
    gpc = BooleanAttribute(null=True)
    # personal data: purged after delivery (retention rule delivered_subject_data)
    email = UnicodeAttribute(null=True)
    name = UnicodeAttribute(null=True)
    details = UnicodeAttribute(null=True)
    # Text typed for one mail to the subject (a controller's reason, the operator's note), read by the
    # notifier when it sends mail `mail_note_for` (rightsdesk.outbound.mail_kinds): queue messages carry ids
    # only. Purged with the personal fields.
    mail_note = UnicodeAttribute(null=True)
    mail_note_for = UnicodeAttribute(null=True)
    # keyed hash of the normalized email; lets the free-request count work without the address
    subject_hash = UnicodeAttribute(null=True)
    status_token_hash = UnicodeAttribute(null=True)
    # Set at verification (rightsdesk.intake.submissions.verify): the code's keyed hash, from which the status
    # token is derived again if the subject's answer was lost, and the wrong or repeated codes sent
    # since (the code's own wrong attempts included). Hashes and counts only; used for the code's
    # lifetime (15 minutes) after verified_at, ignored after.
    verified_code_hash = UnicodeAttribute(null=True)
    verify_retries = NumberAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    verified_at = UTCDateTimeAttribute(null=True)
    due_at = UTCDateTimeAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)
    # when it reached a closed status (rightsdesk.store.lifecycle): an answer's time, read against due_at
    closed_at = UTCDateTimeAttribute(null=True)
    personal_purged_at = UTCDateTimeAttribute(null=True)
    purged_by = UnicodeAttribute(null=True)  # the cause of the purge (rightsdesk.store.deletion.Cause)
    delivered_at = UTCDateTimeAttribute(null=True)
    # deadline notices already queued for the controller (rightsdesk.routing.deadline_watch), each sent once
    notices_sent = UnicodeSetAttribute(null=True)
    legal_hold = LegalHold(null=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    by_controller = ControllerIndex()

    @staticmethod
    def key(request_id: str) -> str:
        return f"REQ#{request_id}"

    @classmethod
    def named_by(cls, keys: Mapping[str, object]) -> str | None:
        """The request id of a request item's keys (a stream record's `Keys`, as plain values);
        None for any other item."""
        pk, sk, prefix = str(keys.get("pk", "")), str(keys.get("sk", "")), cls.key("")
        return pk.removeprefix(prefix) if sk == cls.SK and pk.startswith(prefix) else None


class ChallengeItem(_Item):
    class Meta(_TableMeta):
        pass

    SK = "CHALLENGE"

    code_hash = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    created_at = UTCDateTimeAttribute()


class SubjectCounterItem(_Item):
    """How many verified requests one subject (by keyed email hash) made to one controller in a year."""

    class Meta(_TableMeta):
        pass

    SK = "COUNTER"

    verified = NumberAttribute(default=0)

    @staticmethod
    def key(controller_id: str, subject_hash: str, year: int) -> str:
        return f"SUBJ#{controller_id}#{subject_hash}#{year}"


class SubjectRequestItem(_Item):
    """Files a request the operator carries out itself under its subject, so an export or an erasure
    finds the subject's requests with one query (rightsdesk.own_data.own_requests). Ids only."""

    class Meta(_TableMeta):
        pass

    SK_PREFIX = "REQ#"

    request_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
