"""Due indexes: items filed on GSI2 under a day bucket, their sort key starting with the zero-padded
time they fall due, walked bucket by bucket from where the last walk stopped. The cost of a walk
follows what is due, never the table's size.

Three walks use it, each with its own buckets and its own progress item: the retention sweeper
(`EXP#`, rightsdesk.retention.sweeper), the lifecycle run (`LIFE#`, rightsdesk.lifecycle.run) and
the erasure of records kept for a legal basis (`KEEP#`, rightsdesk.connectors.kept_erasure).

A walk records how far it got (`record_progress`) only over buckets that are closed: their day is
over, with a margin because GSI2 is eventually consistent, and everything in them was handled.
Progress only moves forward, so two walks that overlap cannot move it back. With no progress yet,
a walk starts at the table's creation: nothing can be due before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from pynamodb.exceptions import PutError

from rightsdesk.kernel import clock
from rightsdesk.kernel.retention import BUCKET_SECONDS, bucket_start
from rightsdesk.store.deletion import conditional_failure
from rightsdesk.store.items import table
from rightsdesk.store.items.table import _Item

# GSI2 is eventually consistent: a day's bucket is closed only this long after the day ended.
GRACE_SECONDS = 15 * 60
BATCH_GET_LIMIT = 100


class Counts(Protocol):
    """What a walk's report counts (each walk's Report has these)."""

    queries: int
    items_read: int


def due_bound(now: int) -> str:
    """GSI2 sort keys below this are due by `now` (they start with the zero-padded due time)."""
    return f"{now + 1:012d}"


def buckets(swept_through: int | None, floor: int, now: int) -> range:
    """The day buckets a walk at `now` queries: after the last one walked (or from `floor`) up to now's."""
    first = swept_through + BUCKET_SECONDS if swept_through is not None else bucket_start(floor)
    return range(first, bucket_start(now) + BUCKET_SECONDS, BUCKET_SECONDS)


def closable(bucket: int, now: int) -> bool:
    """Whether nothing can still be filed into `bucket`: its day is over, with margin for the index."""
    return bucket + BUCKET_SECONDS + GRACE_SECONDS <= now


def due_keys(partition: str, now: int, counts: Counts) -> Iterator[list[tuple[str, str]]]:
    """The keys of a bucket's entries due by `now`, in chunks one BatchGetItem can fetch."""
    counts.queries += 1
    chunk: list[tuple[str, str]] = []
    for entry in _Item.by_expiry.query(partition, _Item.gsi2sk < due_bound(now)):
        counts.items_read += 1
        chunk.append((entry.pk, entry.sk))
        if len(chunk) == BATCH_GET_LIMIT:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def progress(model: Any) -> Any | None:
    """The walk's progress item (`model`: a table item with PK, SK, `swept_through`), or None."""
    try:
        return model.get(model.PK, model.SK, consistent_read=True)
    except model.DoesNotExist:
        return None


def start(progress_item: Any | None) -> tuple[int | None, int]:
    """(the last bucket walked or None, the floor a first walk starts from)."""
    swept = int(progress_item.swept_through) if progress_item is not None else None
    return swept, swept if swept is not None else table.created_at()


def record_progress(model: Any, bucket: int) -> None:
    """Every bucket up to `bucket` is done. Only ever forward."""
    item = model(model.PK, model.SK, swept_through=bucket, updated_at=clock.now())
    try:
        item.save(condition=model.swept_through.does_not_exist() | (model.swept_through < bucket))
    except PutError as error:
        if not conditional_failure(error):
            raise
