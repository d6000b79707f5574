"""S3 connector: per-subject prefixes, and JSON Lines or CSV objects rewritten without the subject's rows.

Per-subject prefixes (`users/{user_id}/`): every object version and delete marker under the
prefix is the subject's (the key itself names them), and all of them are deleted.

Row files (`row_files`): every version of every object under the prefix is read (without an
index the cost follows the prefix, not the subject) and its rows whose `field` holds the identity are
the subject's. Erasing rewrites the current version without those rows with `PutObject IfMatch`
on the ETag read: if the object changed meanwhile (a row appended) the write is refused (412),
the object is read again and the rewrite retried, so no row written meanwhile is lost. In a
versioned bucket every older version that still holds a subject's row is then deleted by its
version id (the version just replaced among them). Other rows are kept byte for byte.

A tenant-scoped bucket (definition `tenant_scoped`) names `{tenant_id}` in every subject prefix
and row-file prefix: the seed tenant id fills it, so a run lists only that tenant's keys; without
a tenant id such a connector finds nothing.

With `index: true` on a row-file declaration (rightsdesk.connectors.s3_index), once the prefix is
backfilled, a find reads only the objects the index names for the subject and the ones it could not
index, each listed by its own key: the cost follows the subject's data, not the prefix. The erasure
drops the subject's entries for each object it rewrote.

Limits: an object is read whole, so one larger than `max_object_bytes` fails the connector
(`object_too_large`, naming the object by its keyed hash) before it is read; objects are UTF-8
text, uncompressed (a gzip object fails as `compressed_object`). A JSON Lines line that is not
JSON but contains the identity fails the run (`unreadable_row`) rather than be kept silently.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rightsdesk.connectors.base import (
    Check,
    Connector,
    ConnectorFailure,
    Erased,
    Found,
    Identities,
    Located,
    checked,
    key_hash,
    probe_value,
)
from rightsdesk.connectors.definitions import TENANT_IDENTITY, RowFiles, S3Definition
from rightsdesk.connectors.definitions import placeholders as _placeholders
from rightsdesk.platform.hashing import normalize_email

_NULL_VERSION = "null"  # what S3 lists as the version of an object in an unversioned bucket
_CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
_DELETE_BATCH = 1000
EXPORT_INLINE_BYTES = 1024 * 1024  # a subject-prefix object larger than this is exported as metadata only


@dataclass(frozen=True)
class _Version:
    key: str
    version_id: str
    latest: bool
    delete_marker: bool = False
    size: int = 0


@dataclass
class _Rewrite:
    """What erasing rows did to one object: versions replaced or deleted, rows removed."""

    replaced: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)


def _is_conflict(error: Exception) -> bool:
    response = getattr(error, "response", None) or {}
    code = str((response.get("Error") or {}).get("Code", ""))
    status = str((response.get("ResponseMetadata") or {}).get("HTTPStatusCode", ""))
    return code in _CONFLICT_CODES or status in ("409", "412")


def _error_code(error: Exception) -> str:
    return str(((getattr(error, "response", None) or {}).get("Error") or {}).get("Code", ""))


class _Rows:
    """Splits an object's text into its records and says which are the subject's."""

    def __init__(self, files: RowFiles, value: str):
        self.files = files
        self.email = files.identity == "email"
        self.value = normalize_email(value) if self.email else value

    def _matches(self, candidate: Any) -> bool:
        if isinstance(candidate, bool) or not isinstance(candidate, (str, int)):
            return False
        text = str(candidate)
        return (normalize_email(text) if self.email else text) == self.value

    def split(self, text: str, key_hash_: str) -> tuple[list[str], list[dict[str, Any]]]:
        """(the text of the records to keep, the subject's records as dicts)."""
        lines = list(io.StringIO(text, newline=""))
        if self.files.format == "jsonl":
            return self._jsonl(lines, key_hash_)
        return self._csv(lines, key_hash_)

    def _jsonl(self, lines: list[str], key_hash_: str) -> tuple[list[str], list[dict[str, Any]]]:
        keep, theirs = [], []
        for line in lines:
            if not line.strip():
                keep.append(line)
                continue
            try:
                row = json.loads(line)
            except ValueError:
                if self.value in (normalize_email(line) if self.email else line):
                    raise ConnectorFailure("unreadable_row", key_hash=key_hash_) from None
                keep.append(line)
                continue
            if isinstance(row, dict) and self._matches(row.get(self.files.field)):
                theirs.append(row)
            else:
                keep.append(line)
        return keep, theirs

    def _csv(self, lines: list[str], key_hash_: str) -> tuple[list[str], list[dict[str, Any]]]:
        if not lines:
            return [], []
        # A record may span lines (a quoted field with a newline): the reader's line count says
        # which physical lines each record took, so kept records are copied byte for byte.
        reader = csv.reader(iter(lines))
        try:
            header = next(reader)
        except (StopIteration, csv.Error):
            raise ConnectorFailure("unreadable_row", key_hash=key_hash_) from None
        keep = lines[: reader.line_num]
        if self.files.field not in header:
            raise ConnectorFailure("csv_column_missing", key_hash=key_hash_)
        column = header.index(self.files.field)
        theirs = []
        consumed = reader.line_num
        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error:
                raise ConnectorFailure("unreadable_row", key_hash=key_hash_) from None
            span = lines[consumed : reader.line_num]
            consumed = reader.line_num
            if column < len(record) and self._matches(record[column]):
                theirs.append(dict(zip(header, record, strict=False)))
            else:
                keep.extend(span)
        return keep, theirs


class S3Connector(Connector):
    kind = "s3"
    definition: S3Definition

    def __init__(self, definition: S3Definition, session: Any, *, on_read: Callable[[str], None] | None = None):
        """`on_read(key)` runs between reading an object and its conditional rewrite (tests use
        it to append a row at the worst moment)."""
        super().__init__(definition, session)
        self.client = session.client("s3")
        self._on_read = on_read
        self._index: Any = None
        # Index entries the last find saw stale: (declaration, identity value, object key).
        self._stale: list[tuple[RowFiles, str, str]] = []

    @property
    def bucket(self) -> str:
        return self.definition.bucket

    def _hash(self, key: str) -> str:
        return key_hash(self.id, f"{self.bucket}/{key}")

    # ------------------------------------------------------------------ reading

    def _versions(self, prefix: str) -> list[_Version]:
        versions: list[_Version] = []
        for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
            for entry in page.get("Versions", []):
                versions.append(
                    _Version(
                        entry["Key"],
                        str(entry.get("VersionId") or _NULL_VERSION),
                        bool(entry.get("IsLatest")),
                        size=int(entry.get("Size", 0)),
                    )
                )
            for entry in page.get("DeleteMarkers", []):
                versions.append(
                    _Version(
                        entry["Key"],
                        str(entry.get("VersionId") or _NULL_VERSION),
                        bool(entry.get("IsLatest")),
                        delete_marker=True,
                    )
                )
        return versions

    def _read(self, key: str, version_id: str | None = None, size: int | None = None) -> tuple[str, dict[str, Any]]:
        """(text, the GetObject answer without its body); refuses an object over the size limit."""
        if size is not None and size > self.definition.max_object_bytes:
            raise ConnectorFailure("object_too_large", key_hash=self._hash(key))
        parameters: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id and version_id != _NULL_VERSION:
            parameters["VersionId"] = version_id
        answer = self.client.get_object(**parameters)
        if int(answer.get("ContentLength", 0)) > self.definition.max_object_bytes:
            answer["Body"].close()
            raise ConnectorFailure("object_too_large", key_hash=self._hash(key))
        raw = answer.pop("Body").read()
        if raw[:2] == b"\x1f\x8b":
            raise ConnectorFailure("compressed_object", key_hash=self._hash(key))
        try:
            return raw.decode("utf-8"), answer
        except UnicodeDecodeError:
            raise ConnectorFailure("not_utf8", key_hash=self._hash(key)) from None

    @staticmethod
    def _safe(value: str) -> None:
        if not value or "/" in value or value in (".", ".."):
            raise ConnectorFailure("unsafe_identity_value")

    def _row_prefix(self, files: RowFiles, identities: Identities) -> str | None:
        """The row files' prefix, the tenant filled in (None: a tenant-scoped one without a tenant)."""
        if not files.tenant_in_prefix:
            return files.prefix
        tenant = identities.get(TENANT_IDENTITY)
        if not tenant:
            return None
        self._safe(tenant)
        return files.prefix.format(tenant_id=tenant)

    def kept_by(self, record: Located, identities: Identities) -> int | None:
        """The index of the first keep rule (legal exception) the object's key meets, or None."""
        key = record.handle[1].key
        for index, rule in enumerate(self.definition.keep):
            if rule.match.matches(key, identities):
                return index
        return None

    def _subject_prefixes(self, identities: Identities) -> list[str]:
        prefixes = []
        for template in self.definition.subject_prefixes:
            names = _placeholders(template)
            if any(name not in identities for name in names):
                continue  # an identity this subject does not have: nothing of theirs there
            values = {name: identities[name] for name in names}
            for value in values.values():
                self._safe(value)
            prefix = template.format(**values)
            prefixes.append(prefix)
        return prefixes

    # ------------------------------------------------------------------ the interface

    def find(self, identities: Identities) -> Found:
        records: list[Located] = []
        self._stale = []
        for prefix in self._subject_prefixes(identities):
            for version in self._versions(prefix):
                records.append(Located(key=f"{self.bucket}/{version.key}", handle=("object", version)))
        for files in self.definition.row_files:
            value = identities.get(files.identity)
            if not value:
                continue
            prefix = self._row_prefix(files, identities)
            if prefix is None:
                continue
            rows = _Rows(files, value)
            index = self._index_for(files)
            named: list[str] = []
            if index is None:
                candidates = self._versions(prefix)
            else:
                # Only the objects the index names (and those it could not index), each by its own key.
                named, unindexed = index.objects_for(files, value, prefix)
                candidates = [v for key in named + unindexed for v in self._versions(key) if v.key == key]
            holding: set[str] = set()
            for version in candidates:
                if version.delete_marker:
                    continue
                text, _ = self._read(version.key, version.version_id, version.size)
                _, theirs = rows.split(text, self._hash(version.key))
                if theirs:
                    holding.add(version.key)
                for row in theirs:
                    records.append(
                        Located(key=f"{self.bucket}/{version.key}", handle=("row", version, files), data=row)
                    )
            # An entry whose object holds none of their rows in any version is stale (an older
            # version deleted since): the erasure drops it (a find, dry runs included, writes nothing).
            self._stale += [(files, value, key) for key in named if key not in holding]
        return self._found(identities, records)

    def _index_for(self, files: RowFiles) -> Any:
        """The S3 index that finds this declaration's objects, or None (not indexed, or the prefix's
        older objects not yet backfilled: then the whole prefix is read, as without an index)."""
        if not files.index:
            return None
        if self._index is None:
            from rightsdesk.connectors.s3_index import S3Index

            self._index = S3Index(self.definition, self.client)
        return self._index if self._index.ready(files) else None

    def export(self, found: Found) -> list[dict[str, Any]]:
        exported: list[dict[str, Any]] = []
        for record in found.records:
            kind, version = record.handle[0], record.handle[1]
            if not version.latest or version.delete_marker:
                continue  # the export is of what the subject's data is now
            if kind == "row":
                exported.append({"object": version.key, "row": dict(record.data or {})})
                continue
            entry: dict[str, Any] = {"object": version.key, "size": version.size}
            if version.size <= EXPORT_INLINE_BYTES:
                raw = self.client.get_object(Bucket=self.bucket, Key=version.key)["Body"].read()
                try:
                    entry["text"] = raw.decode("utf-8")
                except UnicodeDecodeError:
                    entry["base64"] = base64.b64encode(raw).decode()
            exported.append(entry)
        return exported

    def erase(self, found: Found) -> Erased:
        objects = [record for record in found.records if record.handle[0] == "object"]
        rows = [record for record in found.records if record.handle[0] == "row"]
        done: set[tuple[str, str]] = set()
        done |= self._delete_versions([record.handle[1] for record in objects])
        # One rewrite per object and rows declaration (two declarations may cover one prefix).
        targets = dict.fromkeys((record.handle[1].key, record.handle[2]) for record in rows)
        indexes: dict[int, Any] = {}  # one readiness read per declaration, not one per object

        def index_of(files: RowFiles) -> Any:
            if id(files) not in indexes:
                indexes[id(files)] = self._index_for(files)
            return indexes[id(files)]

        for key, files in targets:
            rewrite = self._erase_rows(key, files, found.identities)
            done |= {(key, version_id) for version_id in rewrite.replaced | rewrite.deleted}
            index = index_of(files)
            if index is not None:
                # No version of the object holds their rows now: their entry for it goes.
                index.forget(files, found.identities[files.identity], key)
        for files, value, key in self._stale:
            index = index_of(files)
            if index is not None:
                index.forget(files, value, key)
        self._stale = []
        erased = sum(1 for record in found.records if (record.handle[1].key, record.handle[1].version_id) in done)
        return Erased(
            erased=erased,
            already_gone=found.count - erased,
            touched=tuple(sorted({self._hash(record.handle[1].key) for record in found.records})),
        )

    def _delete_versions(self, versions: list[_Version]) -> set[tuple[str, str]]:
        deleted: set[tuple[str, str]] = set()
        for start in range(0, len(versions), _DELETE_BATCH):
            batch = versions[start : start + _DELETE_BATCH]
            objects = [
                {"Key": v.key, **({"VersionId": v.version_id} if v.version_id != _NULL_VERSION else {})} for v in batch
            ]
            answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})
            failed = {
                (e["Key"], str(e.get("VersionId") or _NULL_VERSION))
                for e in answer.get("Errors", [])
                if e.get("Code") != "NoSuchVersion"
            }
            if failed:
                raise ConnectorFailure("delete_refused", key_hash=self._hash(sorted(failed)[0][0]))
            deleted |= {(v.key, v.version_id) for v in batch}
        return deleted

    def _erase_rows(self, key: str, files: RowFiles, identities: Identities) -> _Rewrite:
        """Rewrite the current version without the subject's rows, then delete every older
        version that still holds one."""
        rows = _Rows(files, identities[files.identity])
        rewrite = _Rewrite()
        for _ in range(self.definition.rewrite_attempts):
            try:
                text, answer = self._read(key)
            except Exception as error:
                if _error_code(error) in ("404", "NoSuchKey", "NotFound"):
                    break  # the object is gone: older versions are handled below
                raise
            keep, theirs = rows.split(text, self._hash(key))
            if not theirs:
                break
            if self._on_read is not None:
                self._on_read(key)
            parameters: dict[str, Any] = {
                "Bucket": self.bucket,
                "Key": key,
                "Body": "".join(keep).encode("utf-8"),
                "IfMatch": answer["ETag"],
                "ContentType": answer.get("ContentType") or "application/octet-stream",
                "Metadata": answer.get("Metadata") or {},
            }
            if answer.get("ServerSideEncryption") == "aws:kms":
                parameters["ServerSideEncryption"] = "aws:kms"
                if answer.get("SSEKMSKeyId"):
                    parameters["SSEKMSKeyId"] = answer["SSEKMSKeyId"]
            try:
                self.client.put_object(**parameters)
            except Exception as error:
                if _is_conflict(error):
                    continue  # written meanwhile: read again, so the new rows are kept
                raise
            rewrite.replaced.add(str(answer.get("VersionId") or _NULL_VERSION))
            break
        else:
            raise ConnectorFailure("rewrite_conflict", key_hash=self._hash(key))
        for version in self._versions(key):
            if version.key != key or version.latest or version.delete_marker or version.version_id == _NULL_VERSION:
                continue
            text, _ = self._read(key, version.version_id, version.size)
            if rows.split(text, self._hash(key))[1]:
                self._delete_versions([version])
                rewrite.deleted.add(version.version_id)
        return rewrite

    def probe(self) -> list[Check]:
        """Per prefix: ListObjectVersions (one key), GetObject of a key that does not exist
        (NoSuchKey: with s3:ListBucket the answer is 404, not 403), and for row prefixes
        PutObject with IfMatch on a key that does not exist (refused with 404 or 412 before
        anything is written). Delete permissions cannot be proved without deleting: the first
        enabled run shows them."""
        checks = []
        nobody = probe_value()
        prefixes = [template.split("{", 1)[0] for template in self.definition.subject_prefixes]
        prefixes += [files.prefix.split("{", 1)[0] for files in self.definition.row_files]
        for prefix in dict.fromkeys(prefixes):
            checks.append(
                checked(
                    "s3:ListBucketVersions",
                    lambda p=prefix: self.client.list_object_versions(Bucket=self.bucket, Prefix=p, MaxKeys=1),
                )
            )
            checks.append(
                checked(
                    "s3:GetObject",
                    lambda p=prefix: self.client.get_object(Bucket=self.bucket, Key=p + nobody),
                    "NoSuchKey",
                )
            )
        for files in self.definition.row_files:
            checks.append(
                checked(
                    "s3:PutObject",
                    lambda f=files: self.client.put_object(
                        Bucket=self.bucket, Key=f.prefix.split("{", 1)[0] + nobody, Body=b"", IfMatch='"0"'
                    ),
                    "NoSuchKey",
                    "PreconditionFailed",
                    "404",
                    "412",
                )
            )
        return checks
