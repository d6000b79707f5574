"""The optional S3 index: which objects under an S3 connector's row-file prefix hold which subject,
kept from the bucket's object notifications, so a find reads the subject's objects only.

A row-file declaration with `index: true` (rightsdesk.connectors.definitions.RowFiles) is indexed.
The bucket's notifications (ObjectCreated:*, ObjectRemoved:*) reach S3IndexQueue (directly from the
bucket, or through an EventBridge rule: both shapes are read by `object_events`), and the indexer
(functions/s3_indexer) calls `sync` for each object named, reading it through the connector's role.

`sync` makes the index agree with the object as it is NOW, whatever the notification said: it
reads the current object, so a redelivered, late or out-of-order notification changes nothing
wrong, and a crash part-way is repaired by the next delivery. Per object it writes the entries
(identity hash -> object) for every subject its rows name. The entries always cover the object's
subjects (never fewer): they are written before the object item that lists them (a conditional
write on its `revision`), and the entries it no longer lists are deleted after. In a versioned
bucket an overwrite adds subjects and drops none (older versions still hold their rows); in an
unversioned one the overwritten object's former subjects go. An object that is gone (no version
left) takes its entries with it; one that keeps only older versions keeps them.

An object the indexer cannot index is filed "unindexed" and read by every find: larger than the
definition's `index_max_object_bytes` (default 16 MiB), compressed, not UTF-8, a line that does not
parse, or more than MAX_SUBJECTS_PER_OBJECT subjects. Objects that existed before notifications
were set up are indexed by `backfill`, which marks the prefix ready: until then a find reads the
whole prefix, so an index never hides a subject's rows it was not told about.

Object keys may embed ids, so the index stores them sealed (KMS, purpose `s3_index`, owner the
connector), once per object; entries name objects by keyed hash only.

A removed connector's index is deleted by rightsdesk.connectors.s3_index_purge (registry.remove), and an
indexer batch that wrote for a connector removed meanwhile takes its writes back (`handle`).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from rightsdesk.connectors.base import identity_hash, key_hash
from rightsdesk.connectors.definitions import TENANT_IDENTITY, RowFiles, S3Definition
from rightsdesk.kernel import clock
from rightsdesk.platform.hashing import normalize_email

PURPOSE = "s3_index"
# The object item lists its subjects' hashes (64 characters each): 4,000 stay well inside a
# DynamoDB item (400 KB). An object naming more is unindexed: every find reads it.
MAX_SUBJECTS_PER_OBJECT = 4000
_SYNC_ATTEMPTS = 5
_NULL_VERSION = "null"

INDEXED, UNINDEXED, DROPPED, KEPT, IGNORED = "indexed", "unindexed", "dropped", "kept", "ignored"
DISCARDED = "discarded"  # written for a connector removed while the batch ran, then taken back


@dataclass(frozen=True)
class ObjectEvent:
    """One object a notification named: its bucket and key (decoded), and whether it was removed."""

    bucket: str
    key: str
    removed: bool = False


def object_events(message: Any) -> list[ObjectEvent]:
    """The objects an S3 event notification (`Records`, keys URL-encoded as S3 sends them) or an
    S3 EventBridge event (`detail-type` Object Created / Object Deleted) names. A test event
    (s3:TestEvent) or anything else names none."""
    if not isinstance(message, dict):
        return []
    if message.get("source") == "aws.s3" and isinstance(message.get("detail"), dict):
        detail = message["detail"]
        bucket = (detail.get("bucket") or {}).get("name")
        key = (detail.get("object") or {}).get("key")
        kind = str(message.get("detail-type", ""))
        if not bucket or not key or kind not in ("Object Created", "Object Deleted"):
            return []
        return [ObjectEvent(str(bucket), str(key), kind == "Object Deleted")]
    events = []
    for record in message.get("Records") or []:
        if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
            continue
        s3 = record.get("s3") or {}
        bucket = (s3.get("bucket") or {}).get("name")
        key = (s3.get("object") or {}).get("key")
        name = str(record.get("eventName", ""))
        if not bucket or not key or not name.startswith(("ObjectCreated:", "ObjectRemoved:")):
            continue
        events.append(ObjectEvent(str(bucket), unquote_plus(str(key)), name.startswith("ObjectRemoved:")))
    return events


def subject_hash(files: RowFiles, value: str) -> str:
    """The keyed hash an entry files a subject under (an address normalized, as a find matches it)."""
    return identity_hash(files.identity, normalize_email(value) if files.identity == "email" else value)


def prefix_pattern(files: RowFiles) -> re.Pattern[str]:
    """The keys a declaration covers: its prefix, `{tenant_id}` standing for one path segment."""
    fixed = [re.escape(part) for part in files.prefix.split("{" + TENANT_IDENTITY + "}")]
    return re.compile("^" + "[^/]+".join(fixed))


class Unindexable(Exception):
    """The object cannot be indexed: `reason` says why (too_large, unreadable, too_many_subjects)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _values(files: RowFiles, text: str) -> set[str]:
    """Every subject value the declaration's field holds in the object's rows."""
    values: set[str] = set()

    def add(candidate: Any) -> None:
        if isinstance(candidate, bool) or not isinstance(candidate, (str, int)) or str(candidate) == "":
            return
        values.add(subject_hash(files, str(candidate)))

    if files.format == "jsonl":
        for line in io.StringIO(text, newline=""):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise Unindexable("unreadable") from None  # it may name anyone: a find reads it
            if isinstance(row, dict):
                add(row.get(files.field))
        return values
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return values
        if files.field not in header:
            raise Unindexable("unreadable")
        column = header.index(files.field)
        for record in reader:
            if column < len(record):
                add(record[column])
    except csv.Error:
        raise Unindexable("unreadable") from None
    return values


def _models():
    from rightsdesk.store.items import s3_index

    return s3_index


def _seal(connector_id: str, key: str) -> str:
    from rightsdesk.platform import sealing

    return sealing.seal(key, purpose=PURPOSE, owner=connector_id)


def _unseal(connector_id: str, sealed: str) -> str:
    from rightsdesk.platform import sealing

    return sealing.unseal(sealed, purpose=PURPOSE, owner=connector_id)


def _code(error: Exception) -> str:
    return str(((getattr(error, "response", None) or {}).get("Error") or {}).get("Code", ""))


class S3Index:
    """One connector's index. `client` is an S3 client through the connector's assumed role."""

    def __init__(self, definition: S3Definition, client: Any):
        self.definition = definition
        self.client = client
        self.id = definition.id

    @property
    def bucket(self) -> str:
        return self.definition.bucket

    def key_hash(self, key: str) -> str:
        return key_hash(self.id, f"{self.bucket}/{key}")

    def covering(self, key: str) -> list[RowFiles]:
        """The indexed declarations whose prefix holds `key`."""
        return [files for files in self.definition.indexed_row_files if prefix_pattern(files).match(key)]

    # ------------------------------------------------------------------ keeping it

    def sync(self, key: str, *, every_version: bool = False) -> str:
        """Make the index agree with the object `key` as it is now (see the module's docstring).
        `every_version` (the backfill) also reads older versions: subjects that only those hold."""
        declarations = self.covering(key)
        if not declarations:
            return IGNORED
        from pynamodb.exceptions import DeleteError, PutError

        for _ in range(_SYNC_ATTEMPTS):
            try:
                return self._sync_once(key, declarations, every_version)
            except (PutError, DeleteError) as error:
                if "ConditionalCheckFailed" not in str(getattr(error, "cause_response_code", "") or error):
                    raise
                # another sync of the same object wrote meanwhile: read both again
        raise RuntimeError("s3 index sync kept conflicting")

    def _versions(self, key: str) -> list[dict[str, Any]]:
        versions = []
        for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key):
            versions += [v for v in page.get("Versions", []) if v["Key"] == key]
        return versions

    def _read(self, key: str, version_id: str | None = None) -> tuple[str, dict[str, Any]]:
        parameters: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id and version_id != _NULL_VERSION:
            parameters["VersionId"] = version_id
        answer = self.client.get_object(**parameters)
        if int(answer.get("ContentLength", 0)) > self.definition.index_object_limit:
            answer["Body"].close()
            raise Unindexable("too_large")
        raw = answer.pop("Body").read()
        if raw[:2] == b"\x1f\x8b":
            raise Unindexable("unreadable")
        try:
            return raw.decode("utf-8"), answer
        except UnicodeDecodeError:
            raise Unindexable("unreadable") from None

    def _sync_once(self, key: str, declarations: list[RowFiles], every_version: bool) -> str:
        models = _models()
        record = self._record(key)
        try:
            text, answer = self._read(key)
        except Unindexable as why:
            return self._file_unindexed(key, record, why.reason, size=0)
        except Exception as error:
            if _code(error) not in ("NoSuchKey", "404", "NotFound"):
                raise
            if self._versions(key):
                # Only older versions remain (a delete marker): they still hold their rows.
                if record is None:
                    return self._file_unindexed(key, record, "older_versions", size=0)
                return KEPT
            self._drop_object(key, record)
            return DROPPED
        versioned = str(answer.get("VersionId") or _NULL_VERSION) != _NULL_VERSION
        try:
            found = set().union(*(_values(files, text) for files in declarations))
            if every_version and versioned:
                for version in self._versions(key):
                    if not version.get("IsLatest"):
                        older, _ = self._read(key, str(version["VersionId"]))
                        found |= set().union(*(_values(files, older) for files in declarations))
        except Unindexable as why:
            return self._file_unindexed(key, record, why.reason, size=int(answer.get("ContentLength", 0)))
        old = set(record.identities or ()) if record is not None else set()
        new = found | old if versioned else found
        if len(new) > MAX_SUBJECTS_PER_OBJECT:
            return self._file_unindexed(key, record, "too_many_subjects", size=int(answer.get("ContentLength", 0)))
        now = clock.now()
        self._put_entries(key, new - old, now)
        self._write_record(key, record, new, models.INDEXED, int(answer.get("ContentLength", 0)), now)
        self._delete_entries(key, old - new)
        try:
            models.S3IndexUnindexedItem(models.S3IndexUnindexedItem.partition(self.id), self.key_hash(key)).delete()
        except Exception:  # noqa: BLE001 - it was not filed unindexed
            pass
        return INDEXED

    def _record(self, key: str) -> Any:
        model = _models().S3IndexObjectItem
        try:
            return model.get(model.partition(self.id), self.key_hash(key), consistent_read=True)
        except model.DoesNotExist:
            return None

    def _write_record(self, key: str, record: Any, identities: set[str], state: str, size: int, now: Any) -> str:
        """Writes the object item on the revision read; returns its sealed key."""
        model = _models().S3IndexObjectItem
        sealed = record.sealed_key if record is not None else _seal(self.id, key)
        item = model(
            model.partition(self.id),
            self.key_hash(key),
            connector_id=self.id,
            sealed_key=sealed,
            state=state,
            identities=identities or None,
            size=size,
            revision=(int(record.revision) + 1) if record is not None else 1,
            updated_at=now,
        )
        if record is None:
            item.save(condition=model.pk.does_not_exist())
        else:
            item.save(condition=model.revision == int(record.revision))
        return sealed

    def _file_unindexed(self, key: str, record: Any, reason: str, *, size: int) -> str:
        """Every find reads it from now on; the entries it had stay (they are still true)."""
        models = _models()
        now = clock.now()
        old = set(record.identities or ()) if record is not None else set()
        sealed = self._write_record(key, record, old, models.UNINDEXED, size, now)
        models.S3IndexUnindexedItem(
            models.S3IndexUnindexedItem.partition(self.id),
            self.key_hash(key),
            sealed_key=sealed,
            reason=reason,
            updated_at=now,
        ).save()
        return UNINDEXED

    def _put_entries(self, key: str, identities: Iterable[str], now: Any) -> None:
        model = _models().S3IndexEntryItem
        with model.batch_write() as batch:
            for identity in sorted(identities):
                batch.save(model(model.partition(self.id, identity), self.key_hash(key), created_at=now))

    def _delete_entries(self, key: str, identities: Iterable[str]) -> None:
        model = _models().S3IndexEntryItem
        with model.batch_write() as batch:
            for identity in sorted(identities):
                batch.delete(model(model.partition(self.id, identity), self.key_hash(key)))

    def _drop_object(self, key: str, record: Any) -> None:
        models = _models()
        if record is not None:
            self._delete_entries(key, set(record.identities or ()))
            record.delete(condition=models.S3IndexObjectItem.revision == int(record.revision))
        try:
            models.S3IndexUnindexedItem(models.S3IndexUnindexedItem.partition(self.id), self.key_hash(key)).delete()
        except Exception:  # noqa: BLE001 - it was not filed unindexed
            pass

    def discard(self, key: str) -> None:
        """Delete whatever the index holds on `key` (object item, the entries it lists, the
        unindexed item), unconditionally: the indexer's own late writes for a connector removed
        while its batch ran."""
        models = _models()
        record = self._record(key)
        if record is not None:
            self._delete_entries(key, set(record.identities or ()))
            record.delete()
        models.S3IndexUnindexedItem(models.S3IndexUnindexedItem.partition(self.id), self.key_hash(key)).delete()

    def forget(self, files: RowFiles, value: str, key: str) -> None:
        """The subject's rows are no longer in `key` (in any version): their entry goes. The object
        item stops listing them first, so it never lists a subject without an entry."""
        models = _models()
        identity = subject_hash(files, value)
        model = models.S3IndexObjectItem
        try:
            model(model.partition(self.id), self.key_hash(key)).update(
                actions=[model.identities.delete({identity}), model.updated_at.set(clock.now())],
                condition=model.pk.exists(),
            )
        except Exception as error:  # noqa: BLE001 - no object item: nothing lists them
            if "ConditionalCheckFailed" not in str(getattr(error, "cause_response_code", "") or error):
                raise
        entry = models.S3IndexEntryItem
        entry(entry.partition(self.id, identity), self.key_hash(key)).delete()

    # ------------------------------------------------------------------ reading it

    def ready(self, files: RowFiles) -> bool:
        model = _models().S3IndexReadyItem
        try:
            model.get(model.partition(self.id), files.prefix, consistent_read=True)
        except model.DoesNotExist:
            return False
        return True

    def objects_for(self, files: RowFiles, value: str, prefix: str) -> tuple[list[str], list[str]]:
        """The keys under `prefix` that may hold the subject's rows: (the objects their entries
        name, every unindexed object). Reads the subject's entries, never the bucket."""
        from rightsdesk.store.items.table import get_many

        models = _models()
        entry = models.S3IndexEntryItem
        hashes = [item.sk for item in entry.query(entry.partition(self.id, subject_hash(files, value)))]
        named: set[str] = set()
        model = models.S3IndexObjectItem
        for start in range(0, len(hashes), 100):
            chunk = hashes[start : start + 100]
            for item in get_many([(model, model.partition(self.id), h) for h in chunk], consistent_read=True):
                if item is not None:
                    named.add(_unseal(self.id, item.sealed_key))
        unindexed = models.S3IndexUnindexedItem
        others = {_unseal(self.id, item.sealed_key) for item in unindexed.query(unindexed.partition(self.id))}
        return (
            sorted(key for key in named if key.startswith(prefix)),
            sorted(key for key in others - named if key.startswith(prefix)),
        )

    # ------------------------------------------------------------------ backfill

    def backfill(self) -> int:
        """Index every object under the indexed prefixes (every version: subjects only older
        versions hold too), then mark each prefix ready. Run once after the bucket's notifications
        are set up (the notifications keep it from then on); running it again is harmless."""
        models = _models()
        done: set[str] = set()
        for files in self.definition.indexed_row_files:
            listed = files.prefix.split("{", 1)[0]
            count = 0
            for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=listed):
                keys = {v["Key"] for v in page.get("Versions", [])} | {m["Key"] for m in page.get("DeleteMarkers", [])}
                for key in sorted(keys):
                    if not prefix_pattern(files).match(key):
                        continue
                    count += 1
                    if key not in done:
                        self.sync(key, every_version=True)
                        done.add(key)
            models.S3IndexReadyItem(
                models.S3IndexReadyItem.partition(self.id), files.prefix, objects=count, backfilled_at=clock.now()
            ).save()
        return len(done)


# ------------------------------------------------------------------ the indexer


def indexed_connectors(bucket: str) -> list[S3Definition]:
    """The stored S3 connectors with an indexed declaration on `bucket` (dry ones too: a find of
    theirs uses the index as well)."""
    from rightsdesk.connectors import registry

    found = []
    for stored in registry.list_connectors():
        definition = stored.definition
        if isinstance(definition, S3Definition) and definition.bucket == bucket and definition.indexed_row_files:
            found.append(definition)
    return found


INDEXER_SESSION = "s3-index"  # the role session name: rightsdesk-s3-index in the store's CloudTrail


def handle(events: Iterable[ObjectEvent], *, session_factory: Any = None) -> dict[str, int]:
    """Sync every object the events name in every connector indexing it; counts by outcome.
    Connectors are read once per call; a session is made per connector."""
    if session_factory is None:
        from rightsdesk.connectors.access import assumed_role_session

        session_factory = assumed_role_session
    counts: dict[str, int] = {}
    by_bucket: dict[str, list[S3Definition]] = {}
    indexes: dict[str, S3Index] = {}
    written: dict[str, set[str]] = {}
    try:
        for event in events:
            if event.bucket not in by_bucket:
                by_bucket[event.bucket] = indexed_connectors(event.bucket)
            for definition in by_bucket[event.bucket]:
                if definition.id not in indexes:
                    client = session_factory(definition, INDEXER_SESSION).client("s3")
                    indexes[definition.id] = S3Index(definition, client)
                written.setdefault(definition.id, set()).add(event.key)
                outcome = indexes[definition.id].sync(event.key)
                counts[outcome] = counts.get(outcome, 0) + 1
    finally:
        _discard_removed(indexes, written, counts)
    return counts


def _discard_removed(indexes: dict[str, S3Index], written: dict[str, set[str]], counts: dict[str, int]) -> None:
    """A connector removed while this batch ran (it read the connectors before the removal) may
    have had its index purged before this batch's writes: after its last write, the batch checks
    (strongly consistent) that each connector it wrote for is still stored, and takes back what
    it wrote for one that is not. Either the check runs after the removal and sees it, or every
    write of the batch came before the removal, and so before the purge's reads."""
    from rightsdesk.connectors import registry

    for connector_id, keys in written.items():
        if registry.is_stored(connector_id):
            continue
        for key in sorted(keys):
            indexes[connector_id].discard(key)
        counts[DISCARDED] = counts.get(DISCARDED, 0) + len(keys)


def backfill_connector(connector_id: str, *, actor: Any, session_factory: Any = None) -> dict[str, Any]:
    """Index what a stored connector's indexed prefixes hold already, through its role, and mark
    them ready (`rightsdesk connectors index <id>`); {connector_id, objects, prefixes}. Audited
    (`connector_indexed` on the connector, naming the operator)."""
    from rightsdesk.connectors import registry
    from rightsdesk.connectors.definitions import DefinitionError
    from rightsdesk.kernel.errors import NotFound

    definition = registry.get(connector_id).definition
    if not isinstance(definition, S3Definition) or not definition.indexed_row_files:
        raise DefinitionError(
            "the connector has no indexed row files", fields={"row_files": "declare index: true on a row-file prefix"}
        )
    if session_factory is None:
        from rightsdesk.connectors.access import assumed_role_session

        session_factory = assumed_role_session
    index = S3Index(definition, session_factory(definition, INDEXER_SESSION).client("s3"))
    objects = index.backfill()
    if not registry.is_stored(connector_id):
        # removed while this backfill ran: its purge may have passed what the backfill wrote
        from rightsdesk.connectors.s3_index_purge import purge

        purge(connector_id)
        raise NotFound(f"no connector {connector_id}", code="connector_not_found")
    from rightsdesk.store import audit
    from rightsdesk.store.items.audit import AuditEvent
    from rightsdesk.store.items.connectors import ConnectorItem

    event = audit.event(ConnectorItem.key(connector_id), action="connector_indexed", actor=actor)
    event.save(condition=AuditEvent.sk.does_not_exist())
    return {
        "connector_id": connector_id,
        "objects": objects,
        "prefixes": [files.prefix for files in definition.indexed_row_files],
    }
