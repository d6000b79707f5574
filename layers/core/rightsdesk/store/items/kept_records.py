"""Records a connector kept for a legal basis (Art. 17(3)), scheduled for erasure when their period
ends (rightsdesk.connectors.kept_records acts on them)."""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute

from rightsdesk.store.items.table import _Item, _TableMeta


class KeptRecordsItem(_Item):
    """One request's records kept by one connector, under REQ#<id> / KEPT#<connector id>.

    `sealed` is KMS ciphertext (rightsdesk.platform.sealing, purpose `kept_records`, owner the
    request and connector) of what the later erasure needs to act: the identities the connector
    was run with and each kept record's key with its due time. Keyed hashes could not act.
    `exceptions` names each basis, period and end date (no personal data). Filed on the expiry
    index (GSI2) under KEEP#<day bucket> by `due_at`, its earliest due time: the retention
    sweeper's EXP# buckets never list it. Deleted once every kept record is erased; no TTL, since
    a statutory period (ten years) outlives the request skeleton.
    """

    class Meta(_TableMeta):
        pass

    SK_PREFIX = "KEPT#"

    connector_id = UnicodeAttribute()
    sealed = UnicodeAttribute()
    exceptions = UnicodeAttribute()  # JSON: [{basis, period_days, keep_until, kept}]
    kept = NumberAttribute()
    due_at = NumberAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    # A legal hold on the request found it due: filed again for after the hold (held, not erased).
    held_at = UTCDateTimeAttribute(null=True)

    @classmethod
    def sort_key(cls, connector_id: str) -> str:
        return f"{cls.SK_PREFIX}{connector_id}"


class KeptSweepState(_Item):
    """How far the erasure of kept records got: every KEEP# bucket up to `swept_through` is done."""

    class Meta(_TableMeta):
        pass

    PK = "KEPT_SWEEP"
    SK = "STATE"

    swept_through = NumberAttribute()
    updated_at = UTCDateTimeAttribute()
