"""DynamoDB items of the single RightsTable, as pynamodb models.

Keys (pk / sk):
  REQ#<id>      REQUEST            the request (personal fields purged after delivery)
  REQ#<id>      CHALLENGE          the hashed verification code (15 minutes)
  REQ#<id>      AUDIT#<at>#<n>     audit events (never personal data)
  CTRL#<id>     CONTROLLER         a controller registered by the operator
  SITE#<key>    SITE               site key or domain -> controller id
  CTRL#<id>     AUDIT#<at>#<n>     audit events of registry changes
  SWEEP         STATE              how far the retention sweeper got (rightsdesk.sweeper)
  APIKEY#<hash> APIKEY             keyed hash of a controller's API key -> controller id
  SUBJ#<controller>#<subject hash>#<year>  COUNTER   verified requests of a subject that year
Breach and policy notices (issue 5, docs/notices.md):
  INCIDENT#<id> INCIDENT           a personal-data breach: its facts, deadlines and notice counts
  INCIDENT#<id> NOTICE#<kind>#<recipient>  one recipient's notice and its status (holds the address)
  INCIDENT#<id> AUDIT#<at>#<n>     audit events of the incident
  POLICY#<doc>  VERSION#<version>  a published policy version (the public archive)
  CONTACT#<email hash> CONTACT     a contact who subscribed to lists (rightsdesk.contacts)
  CONTACT#<email hash> LIST#<list> the contact's membership of one list
  SUPPRESS#<email hash> SUPPRESSION  an address that bounced or complained (no address stored)
  UNSUB#<nonce> SPENT              an unsubscribe token that was used
  ISSUE#<digest> ISSUE             an issue of an optional list, read when each member's mail is sent
The operator's own data (issue 6, docs/operations.md "Operator's own data"):
  CONTACT#<email hash> CONSENT#<purpose>  one purpose's consent: granted or withdrawn, with its history
  CONTACT#<email hash> REQ#<request id>   a request the subject made to the operator itself (ids only)
Abuse guard (issue 7): GUARD#<kind>#<keyed hash of the source IP> WINDOW#<epoch>  failed attempts, TTL'd
GSI1 (gsi1pk, gsi1sk): CTRL#<id> / <status>#<created_at>#<id>, the controller's listings.
     INCIDENTS / <detected_at>#<id>; POLICIES / <doc>#<version>; LIST#<list> / <email hash>.
     AUDIT#<yyyy-mm> / <at>#<pk>#<sk>, deletion audit events by month (rightsdesk.deletion).
GSI2 (gsi2pk, gsi2sk): EXP#<day bucket> / <due_at>#<pk>#<sk>, the sweeper's expiry index.
"""

from __future__ import annotations

import os
from functools import lru_cache

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.connection import Connection
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from rightsdesk.config import settings
from rightsdesk.sessions import share_botocore_data

share_botocore_data()  # every model class opens its own connection: parse botocore's data once


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "eu-central-1"


class _TableMeta:
    table_name = settings().table_name
    region = _region()


class ControllerIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "GSI1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class ExpiryIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "GSI2"
        projection = KeysOnlyProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class _Item(Model):
    class Meta(_TableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    # TTL: DynamoDB deletes the item some time after this epoch second; reads treat it as gone at once
    expires_at = NumberAttribute(null=True)
    # the next retention action the sweeper owes this item (rightsdesk.retention), indexed in GSI2
    retention_rule = UnicodeAttribute(null=True)
    retention_due_at = NumberAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    by_expiry = ExpiryIndex()
    # Set in the write just before a delete, so the stream handler can name the cause of the
    # REMOVE (rightsdesk.deletion); DynamoDB's TTL leaves no marker.
    deleted_by = UnicodeAttribute(null=True)
    deleted_at = NumberAttribute(null=True)


class ReplacedSecret(MapAttribute):
    """A webhook secret a rotation replaced (KMS ciphertext) and until when it still signs."""

    sealed = UnicodeAttribute()
    valid_until = UTCDateTimeAttribute()


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
    # personal data: purged after delivery (retention rule delivered_subject_data)
    email = UnicodeAttribute(null=True)
    name = UnicodeAttribute(null=True)
    details = UnicodeAttribute(null=True)
    # Text typed for one mail to the subject (a controller's reason, the operator's note), read by the
    # notifier when it sends mail `mail_note_for` (rightsdesk.mail_kinds): queue messages carry ids
    # only. Purged with the personal fields.
    mail_note = UnicodeAttribute(null=True)
    mail_note_for = UnicodeAttribute(null=True)
    # keyed hash of the normalized email; lets the free-request count work without the address
    subject_hash = UnicodeAttribute(null=True)
    status_token_hash = UnicodeAttribute(null=True)
    # Set at verification (rightsdesk.intake.verify): the code's keyed hash, from which the status
    # token is derived again if the subject's answer was lost, and the wrong or repeated codes sent
    # since (the code's own wrong attempts included). Hashes and counts only; used for the code's
    # lifetime (15 minutes) after verified_at, ignored after.
    verified_code_hash = UnicodeAttribute(null=True)
    verify_retries = NumberAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    verified_at = UTCDateTimeAttribute(null=True)
    due_at = UTCDateTimeAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)
    # when it reached a closed status (rightsdesk.lifecycle): an answer's time, read against due_at
    closed_at = UTCDateTimeAttribute(null=True)
    personal_purged_at = UTCDateTimeAttribute(null=True)
    purged_by = UnicodeAttribute(null=True)  # the cause of the purge (rightsdesk.deletion.Cause)
    delivered_at = UTCDateTimeAttribute(null=True)
    # deadline notices already queued for the controller (rightsdesk.deadline_watch), each sent once
    notices_sent = UnicodeSetAttribute(null=True)
    legal_hold = LegalHold(null=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    by_controller = ControllerIndex()

    @staticmethod
    def key(request_id: str) -> str:
        return f"REQ#{request_id}"


class ChallengeItem(_Item):
    class Meta(_TableMeta):
        pass

    SK = "CHALLENGE"

    code_hash = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    created_at = UTCDateTimeAttribute()


class AuditEvent(_Item):
    """Who did what to which record, when. Never personal data: ids, statuses and causes only."""

    class Meta(_TableMeta):
        pass

    SK_PREFIX = "AUDIT#"

    action = UnicodeAttribute()
    actor = UnicodeAttribute()
    at = UTCDateTimeAttribute()
    from_status = UnicodeAttribute(null=True)
    to_status = UnicodeAttribute(null=True)
    cause = UnicodeAttribute(null=True)
    # deletion events (rightsdesk.deletion): the retention rule and the kind of item (its sk)
    rule = UnicodeAttribute(null=True)
    item_kind = UnicodeAttribute(null=True)
    # deletion events are also filed by month (GSI1 AUDIT#<yyyy-mm>): an auditor's query never scans
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    by_month = ControllerIndex()


class ControllerItem(_Item):
    class Meta(_TableMeta):
        pass

    SK = "CONTROLLER"

    controller_id = UnicodeAttribute()
    name = UnicodeAttribute()
    site_key = UnicodeAttribute()
    domains = ListAttribute(of=UnicodeAttribute, null=True)
    contact_email = UnicodeAttribute()
    locale = UnicodeAttribute(default="en")
    delivery = UnicodeAttribute()  # webhook | email | pull | internal
    webhook_url = UnicodeAttribute(null=True)
    sla_days = NumberAttribute(null=True)
    purge_after_seconds = NumberAttribute(null=True)
    api_key_hash = UnicodeAttribute(null=True)
    # KMS ciphertext (rightsdesk.sealing); every replaced secret still signs until its valid_until
    webhook_secret_sealed = UnicodeAttribute(null=True)
    replaced_webhook_secrets = ListAttribute(of=ReplacedSecret, null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute(null=True)
    # offboarding (rightsdesk.registry): absent = active | disabled | removed, with the operator's note
    state = UnicodeAttribute(null=True)
    state_reason = UnicodeAttribute(null=True)
    state_changed_at = UTCDateTimeAttribute(null=True)
    # every controller sits in one GSI1 partition, so listing them never scans the table
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    listing = ControllerIndex()

    @staticmethod
    def key(controller_id: str) -> str:
        return f"CTRL#{controller_id}"


class SiteItem(_Item):
    """A site key or domain a subject may type into the form, pointing at its controller."""

    class Meta(_TableMeta):
        pass

    SK = "SITE"

    controller_id = UnicodeAttribute()

    @staticmethod
    def key(site: str) -> str:
        return f"SITE#{site.strip().lower()}"


class ApiKeyItem(_Item):
    """Finds a controller by the keyed hash of its API key; replaced in the same write as the key."""

    class Meta(_TableMeta):
        pass

    SK = "APIKEY"

    controller_id = UnicodeAttribute()

    @staticmethod
    def key(api_key_hash: str) -> str:
        return f"APIKEY#{api_key_hash}"


class SubjectCounterItem(_Item):
    """How many verified requests one subject (by keyed email hash) made to one controller in a year."""

    class Meta(_TableMeta):
        pass

    SK = "COUNTER"

    verified = NumberAttribute(default=0)

    @staticmethod
    def key(controller_id: str, subject_hash: str, year: int) -> str:
        return f"SUBJ#{controller_id}#{subject_hash}#{year}"


class SweepState(_Item):
    """How far the retention sweeper got: every expiry bucket up to `swept_through` is done."""

    class Meta(_TableMeta):
        pass

    PK = "SWEEP"
    SK = "STATE"

    swept_through = NumberAttribute()
    updated_at = UTCDateTimeAttribute()


# ------------------------------------------------------------------ breach and policy notices (issue 5)


class Tally(MapAttribute):
    """How many notices of one kind of recipient are in each status (rightsdesk.breaches)."""

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
    # when the last notice of each kind settled with none pending or failed (rightsdesk.breaches.tally):
    # what the controllers' and subjects' deadlines are read against, kept after the notices expire
    controllers_notified_at = UTCDateTimeAttribute(null=True)
    subjects_notified_at = UTCDateTimeAttribute(null=True)
    # deadline (controllers | subjects | authority) -> the operator's reasons for a late notification
    # (GDPR Art. 33(1)): operator-typed text, no recipient
    delay_reasons = MapAttribute(null=True)
    controllers = Tally(default=dict)
    subjects = Tally(default=dict)
    webhooks_queued = NumberAttribute(default=0)
    # operator warnings already queued (rightsdesk.breach_watch), each sent once
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
    # issue 6: a name the subject may have corrected, and the subject's restriction of processing
    # or objection to it (either stops every optional list; rightsdesk.contacts.may_receive)
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
    """One issue of an optional list (rightsdesk.newsletter): what the operator wrote, read by the
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


# ------------------------------------------------------------------ the operator's own data (issue 6)


class ConsentChange(MapAttribute):
    state = UnicodeAttribute()  # granted | withdrawn
    at = UTCDateTimeAttribute()
    source = UnicodeAttribute()


class ConsentItem(_Item):
    """One subject's consent to one purpose, in the contact partition (rightsdesk.consents): the state
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


class SubjectRequestItem(_Item):
    """Files a request the operator carries out itself under its subject, so an export or an erasure
    finds the subject's requests with one query (rightsdesk.own_requests). Ids only."""

    class Meta(_TableMeta):
        pass

    SK_PREFIX = "REQ#"

    request_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()


class GuardItem(_Item):
    """Failed attempts from one source (a keyed hash) in one time window (rightsdesk.guard)."""

    class Meta(_TableMeta):
        pass

    failures = NumberAttribute(default=0)


class LimitCounterItem(_Item):
    """What one address, source or request used of one limit in one window (rightsdesk.limits):
    keyed by a keyed hash (or a request id), never by the address itself."""

    class Meta(_TableMeta):
        pass

    used = NumberAttribute(default=0)
    # keyed hash of the last note mailed to a subject in this window (repeated notes collapse)
    last_note = UnicodeAttribute(null=True)


ALL_MODELS: tuple[type[Model], ...] = (
    RequestItem, ChallengeItem, AuditEvent, ControllerItem, SiteItem, ApiKeyItem, SubjectCounterItem,
    SweepState,
    IncidentItem, NoticeItem, PolicyVersionItem, ContactItem, ListMemberItem, SuppressionItem, SpentTokenItem,
    ListIssueItem,
    ConsentItem, SubjectRequestItem,
    GuardItem, LimitCounterItem,
    _Item,  # any item by its keys and retention attributes: how the sweeper reads the expiry index
)


@lru_cache(maxsize=1)
def connection() -> Connection:
    """One shared connection: each new one re-reads botocore's service model (~0.1 s)."""
    return Connection(region=_region())


def transaction() -> TransactWrite:
    """An all-or-nothing write of several items (conditions included) on the shared connection."""
    return TransactWrite(connection=connection())


def bind_table(table_name: str, region: str | None = None) -> None:
    """Point every model at another table (tests, the CLI and the local runner name their own)."""
    if region:
        os.environ["AWS_DEFAULT_REGION"] = region
    for model in ALL_MODELS:
        model.Meta.table_name = table_name
        model.Meta.region = region or model.Meta.region
        model._connection = None
    connection.cache_clear()
