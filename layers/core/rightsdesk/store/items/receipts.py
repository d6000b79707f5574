"""Erasure receipts: one signed entry per connector outcome, chained under the request's partition
(rightsdesk.connectors.receipts builds, signs and verifies them; docs/connectors.md, Receipts)."""

from __future__ import annotations

from pynamodb.attributes import (
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)

from rightsdesk.store.items.table import _Item, _TableMeta


class ReceiptEntryItem(_Item):
    """One entry of a request's receipt chain, under REQ#<id> / RECEIPT#<seq>.

    `body` is the canonical JSON exactly as it was signed, so a reader re-verifies the stored
    bytes, not a re-encoding of them. The keyed hashes of the touched keys are kept beside the body
    (it holds their count and digest only, to stay under KMS's 4 KB RAW message). Kept as long as
    the request skeleton, like the audit trail; written once (a conditional put) and never updated.
    """

    class Meta(_TableMeta):
        pass

    SK_PREFIX = "RECEIPT#"

    seq = NumberAttribute()
    body = UnicodeAttribute()
    entry_hash = UnicodeAttribute()
    signature = UnicodeAttribute()  # base64 of KMS's DER-encoded ECDSA signature
    key_hashes = ListAttribute(of=UnicodeAttribute, null=True)
    # The caller's name for the step that produced the entry: a retried step finds its entry again
    # instead of adding a second one.
    step_id = UnicodeAttribute(null=True)
    recorded_at = UTCDateTimeAttribute()

    @classmethod
    def sort_key(cls, seq: int) -> str:
        # zero-padded, so the table's order is the chain's order
        return f"{cls.SK_PREFIX}{seq:06d}"
