"""Purging a removed S3 connector's index: every `S3IDX#<connector>#...` item, nothing else.

rightsdesk.connectors.registry.remove deletes the definition first (so the indexer stops writing
for it), then calls `purge`; a purge cut short is finished by removing the id again (`has_items`).
The indexer's own late writes for a removed connector are taken back by the indexer
(rightsdesk.connectors.s3_index.handle). Kept apart from the indexer so the registry can call it
without importing the indexer, which reads the registry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rightsdesk.store.items import s3_index

# Object items read per round of a purge: their subjects' entries go first, then the items, so an
# interrupted purge leaves every remaining entry still listed by a remaining object item.
_PURGE_ROUND = 100


@dataclass
class PurgeCounts:
    """What a purge deleted so far, by kind of item (ids and counts only: it goes on the audit trail)."""

    objects: int = 0
    entries: int = 0
    unindexed: int = 0
    ready: int = 0

    @property
    def total(self) -> int:
        return self.objects + self.entries + self.unindexed + self.ready

    def as_dict(self) -> dict[str, int]:
        return {"objects": self.objects, "entries": self.entries, "unindexed": self.unindexed, "ready": self.ready}

    def cause(self) -> str:
        """The audit event's cause: `objects=3 entries=12 unindexed=1 ready=2`."""
        return " ".join(f"{kind}={count}" for kind, count in self.as_dict().items())


def _delete_all(model: Any, items: Iterable[Any]) -> int:
    """Delete the items in BatchWriteItem calls of 25 (pynamodb's batch_write resends what
    DynamoDB leaves unprocessed); how many were asked."""
    count = 0
    with model.batch_write() as batch:
        for item in items:
            batch.delete(item)
            count += 1
    return count


def has_items(connector_id: str) -> bool:
    """Whether the connector has an object, unindexed or ready item left (strongly consistent):
    every entry a purge has not deleted yet is listed by an object item it has not deleted yet."""
    models = s3_index
    for model in (models.S3IndexObjectItem, models.S3IndexUnindexedItem, models.S3IndexReadyItem):
        if next(iter(model.query(model.partition(connector_id), consistent_read=True, limit=1)), None) is not None:
            return True
    return False


def purge(connector_id: str, counts: PurgeCounts | None = None) -> PurgeCounts:
    """Delete every item of the connector's index: per round of object items, each subject's
    entry partition (S3IDX#<id>#ID#<hash>, found from the hashes the items list) and then the
    items; then the unindexed and ready items. Reads are strongly consistent, so nothing written
    before the purge began is missed. `counts` (updated as items go) tells a caller how far an
    interrupted purge got; running it again finishes it; on an empty index it deletes nothing.
    Only keys under S3IDX#<connector_id># are touched: another connector's index stays."""
    models = s3_index
    counts = counts if counts is not None else PurgeCounts()
    objects, entries = models.S3IndexObjectItem, models.S3IndexEntryItem
    cleared: set[str] = set()
    while True:
        round_ = list(objects.query(objects.partition(connector_id), consistent_read=True, limit=_PURGE_ROUND))
        if not round_:
            break
        for identity in sorted(set().union(*(set(item.identities or ()) for item in round_)) - cleared):
            partition = entries.query(entries.partition(connector_id, identity), consistent_read=True)
            counts.entries += _delete_all(entries, list(partition))
            cleared.add(identity)
        counts.objects += _delete_all(objects, round_)
    for model, kind in ((models.S3IndexUnindexedItem, "unindexed"), (models.S3IndexReadyItem, "ready")):
        while True:
            found = list(model.query(model.partition(connector_id), consistent_read=True, limit=_PURGE_ROUND))
            if not found:
                break
            setattr(counts, kind, getattr(counts, kind) + _delete_all(model, found))
    return counts
