"""The S3 index (rightsdesk.connectors.s3_index): which indexed objects of a connector's bucket hold
which subjects, kept from the bucket's object notifications.

Every key starts with S3IDX#<connector id>#, so the indexer's policy can be limited to that key
space (dynamodb:LeadingKeys). Object keys are never stored in the clear: an object is named by its
keyed hash (rightsdesk.connectors.base.key_hash) and its key is sealed once, on its object item.
No TTL: an entry lives as long as the object (or an older version of it) may hold the subject's
rows, and goes with the object's removal, its rewrite without the subject, or the subject's erasure.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UnicodeSetAttribute, UTCDateTimeAttribute

from rightsdesk.store.items.table import _Item, _TableMeta

PREFIX = "S3IDX#"
INDEXED, UNINDEXED = "indexed", "unindexed"


class S3IndexObjectItem(_Item):
    """S3IDX#<connector>#OBJECTS / <key hash>: one object the index knows.

    `identities`: the keyed identity hashes its rows name (every entry it has; a subset never, a
    superset after an overwrite in a versioned bucket, since older versions still hold their rows).
    `state` unindexed: too large, unreadable or too many subjects to index; every find reads it.
    `revision` moves on with every sync, conditionally: two syncs of one object never interleave."""

    class Meta(_TableMeta):
        pass

    connector_id = UnicodeAttribute()
    sealed_key = UnicodeAttribute()
    state = UnicodeAttribute()
    identities = UnicodeSetAttribute(null=True)
    size = NumberAttribute(default=0)
    revision = NumberAttribute(default=0)
    updated_at = UTCDateTimeAttribute()

    @staticmethod
    def partition(connector_id: str) -> str:
        return f"{PREFIX}{connector_id}#OBJECTS"


class S3IndexEntryItem(_Item):
    """S3IDX#<connector>#ID#<identity hash> / <key hash>: the subject's rows are in this object.

    One query per subject lists their objects: the cost follows their data, not the bucket."""

    class Meta(_TableMeta):
        pass

    created_at = UTCDateTimeAttribute()

    @staticmethod
    def partition(connector_id: str, identity: str) -> str:
        return f"{PREFIX}{connector_id}#ID#{identity}"


class S3IndexUnindexedItem(_Item):
    """S3IDX#<connector>#UNINDEXED / <key hash>: an object every find of the connector reads."""

    class Meta(_TableMeta):
        pass

    sealed_key = UnicodeAttribute()
    reason = UnicodeAttribute()  # too_large | unreadable | too_many_subjects | older_versions
    updated_at = UTCDateTimeAttribute()

    @staticmethod
    def partition(connector_id: str) -> str:
        return f"{PREFIX}{connector_id}#UNINDEXED"


class S3IndexReadyItem(_Item):
    """S3IDX#<connector>#READY / <row-file prefix>: the objects that existed under the prefix
    before its notifications were set up have been indexed (a backfill); until then a find reads
    the whole prefix."""

    class Meta(_TableMeta):
        pass

    objects = NumberAttribute(default=0)
    backfilled_at = UTCDateTimeAttribute()

    @staticmethod
    def partition(connector_id: str) -> str:
        return f"{PREFIX}{connector_id}#READY"
