"""Where the records each connector gathered for an access or portability request wait until the
subject opens the export (rightsdesk.own_data.exports), for Rule.EXPORT's 7 days.

One item per request and connector, REQ#<id> / EXPORTPART#<connector id>: the records as JSON in
the item itself when small, else in the ExportBucket (SSE-KMS with the stack's data key; the
bucket's lifecycle deletes them after 7 days as the item's TTL deletes the item). The records are
the subject's personal data: never logged, never in a message. A section is
`{"connector_id", "kind", "records"}` (the processor's rendering takes the list as it is).
"""

from __future__ import annotations

import json
from typing import Any

from rightsdesk.kernel import clock, retention
from rightsdesk.platform import config
from rightsdesk.store.items.executions import ExportPartItem
from rightsdesk.store.items.requests import RequestItem

# A table item holds at most 400 KB with its keys and attributes: larger exports go to S3.
ITEM_LIMIT_BYTES = 300 * 1024
SK_PREFIX = ExportPartItem.SK_PREFIX


def _key(request_id: str, connector_id: str) -> str:
    return f"exports/{request_id}/{connector_id}.json"


def save(request_id: str, connector_id: str, kind: str, records: list[dict[str, Any]]) -> None:
    """Keep one connector's records for the request's export (again: replaced, so a retried step
    leaves one copy)."""
    body = json.dumps(records, sort_keys=True, separators=(",", ":"), default=str)
    now = clock.now()
    item = ExportPartItem(
        RequestItem.key(request_id),
        f"{SK_PREFIX}{connector_id}",
        connector_id=connector_id,
        kind=kind,
        count=len(records),
        expires_at=retention.expires_at(retention.Rule.EXPORT, now),
    )
    if len(body.encode("utf-8")) <= ITEM_LIMIT_BYTES:
        item.records = body
    else:
        bucket = config.export_bucket()
        if not bucket:
            raise RuntimeError("the export is too large for a table item and no EXPORT_BUCKET is configured")
        key = _key(request_id, connector_id)
        parameters: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": body.encode("utf-8")}
        parameters["ContentType"] = "application/json"
        data_key = config.settings().data_key_id
        if data_key:
            parameters.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=data_key)
        _s3().put_object(**parameters)
        item.s3_key = key
    item.save()


def _s3() -> Any:
    from rightsdesk.platform import aws_clients

    return aws_clients.client("s3")


def sections(request_id: str) -> list[dict[str, Any]]:
    """The connectors' sections of the request's export, by connector id; expired parts are left out."""
    found = []
    parts = ExportPartItem.query(RequestItem.key(request_id), ExportPartItem.sk.startswith(SK_PREFIX))
    for part in sorted(parts, key=lambda p: p.connector_id):
        if not retention.is_live(part):
            continue
        if part.records is not None:
            records = json.loads(part.records)
        elif part.s3_key:
            body = _s3().get_object(Bucket=config.export_bucket(), Key=part.s3_key)["Body"].read()
            records = json.loads(body)
        else:
            records = []
        found.append({"connector_id": part.connector_id, "kind": part.kind, "records": records})
    return found


def forget(request_id: str) -> int:
    """Delete the request's stored sections now (an erasure of the subject's data reaches the
    exports made for their earlier requests too); returns how many went."""
    gone = 0
    for part in ExportPartItem.query(RequestItem.key(request_id), ExportPartItem.sk.startswith(SK_PREFIX)):
        if part.s3_key and config.export_bucket():
            _s3().delete_object(Bucket=config.export_bucket(), Key=part.s3_key)
        part.delete()
        gone += 1
    return gone
