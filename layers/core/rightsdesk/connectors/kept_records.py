"""Records kept for a legal basis (Art. 17(3)): scheduled, sealed, for erasure when the basis ends.

A connector's definition may declare records it must keep (`keep`: invoices under a tax law, say).
`base.erase_and_verify` leaves them in place and calls `schedule` first: one item per request and
connector (store.items.kept_records.KeptRecordsItem) that holds, sealed at rest with KMS, what the
later erasure needs to act (the identities the connector ran with and the kept records' keys with
their due times; keyed hashes could not find them again), and is filed on the expiry index under
its own KEEP#<day> buckets by its earliest due time.

rightsdesk.connectors.kept_erasure `run_due` is the later erasure: like the retention sweeper it walks the day buckets since its last
run and reads only the items due (cost follows the due items, never the table), and for each
re-runs the connector on exactly the due keys: finds them again with the stored identities, erases
those (the kind's conditional writes apply: a record that changed hands is left alone), re-queries
those keys, and appends the outcome to the request's signed receipt (and seals it again). A legal
hold on the request stops it as it stops the sweeper: the item is filed again for after the hold
(its `until`, or the next day while it has none) and nothing is erased. A failure (connector
removed or disabled, access denied, records still there) files the item for the next day and is
reported; it is never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.retention import bucket_start

PURPOSE = "kept_records"
BUCKET_PREFIX = "KEEP#"


class NoRequestToKeepFor(Exception):
    """A connector built without its request cannot file what it keeps: nothing is erased."""

    code = "kept_records_without_request"


def keep_until(erased_at: datetime, period_days: int) -> datetime:
    """When a record kept for a legal basis is erased (rightsdesk.kernel.retention says how)."""
    return retention.kept_for_legal_basis_until(erased_at, period_days)


def _owner(request_id: str, connector_id: str) -> str:
    """The sealing owner: a ciphertext copied onto another request's or connector's item does not open."""
    return f"{request_id}/{connector_id}"


def index_keys(due_at: int, pk: str, sk: str, now: int | None = None) -> dict[str, str]:
    """GSI2 keys that file the item under its day bucket (a past due time in the current one)."""
    filed = max(due_at, clock.epoch() if now is None else now)
    return {"gsi2pk": f"{BUCKET_PREFIX}{bucket_start(filed)}", "gsi2sk": f"{due_at:012d}#{pk}#{sk}"}


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def moment(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


def exceptions(rules: Sequence[Any], keys: Mapping[str, Mapping[str, int]]) -> list[dict[str, Any]]:
    """Per keep rule that holds keys: its basis, period, end date (the latest due time) and count."""
    by_rule: dict[int, list[int]] = {}
    for entry in keys.values():
        by_rule.setdefault(int(entry["rule"]), []).append(int(entry["due_at"]))
    described = []
    for index, dues in sorted(by_rule.items()):
        rule = rules[index] if index < len(rules) else None
        described.append(
            {
                "basis": rule.basis if rule is not None else "(a keep rule since removed)",
                "period_days": rule.period_days if rule is not None else None,
                "keep_until": clock.isoformat(moment(max(dues))),
                "kept": len(dues),
            }
        )
    return described


def item_model():
    from rightsdesk.store.items.kept_records import KeptRecordsItem

    return KeptRecordsItem


def _read(request_id: str, connector_id: str) -> Any:
    from rightsdesk.store.items.requests import RequestItem

    model = item_model()
    try:
        return model.get(RequestItem.key(request_id), model.sort_key(connector_id), consistent_read=True)
    except model.DoesNotExist:
        return None


def payload_of(item: Any) -> dict[str, Any]:
    from rightsdesk.platform import sealing

    request_id = item.pk.removeprefix("REQ#")
    return json.loads(sealing.unseal(item.sealed, purpose=PURPOSE, owner=_owner(request_id, item.connector_id)))


def seal_payload(request_id: str, connector_id: str, payload: Mapping[str, Any]) -> str:
    from rightsdesk.platform import sealing

    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return sealing.seal(text, purpose=PURPOSE, owner=_owner(request_id, connector_id))


def schedule(
    connector: Any,
    identities: Mapping[str, str],
    kept: Mapping[int, Sequence[Any]],
    *,
    at: datetime,
) -> list[dict[str, Any]]:
    """File the records `kept` (keep rule index -> records) for erasure when their periods end, and
    return the legal exceptions as an outcome names them. A retried or resumed run adds to the item:
    a key already scheduled keeps its first due time (the earliest erasure that kept it)."""
    request_id = connector.request_id
    if not request_id:
        raise NoRequestToKeepFor(NoRequestToKeepFor.code)
    rules = connector.definition.keep_rules
    model = item_model()
    from rightsdesk.store.items.requests import RequestItem

    existing = _read(request_id, connector.id)
    payload: dict[str, Any] = payload_of(existing) if existing is not None else {"identities": {}, "keys": {}}
    payload["identities"] = dict(identities)
    this_run: dict[str, dict[str, int]] = {}
    for index, records in kept.items():
        due = epoch(keep_until(at, rules[index].period_days))
        for record in records:
            entry = payload["keys"].setdefault(record.key, {"due_at": due, "rule": index})
            this_run[record.key] = entry
    due_at = min(int(entry["due_at"]) for entry in payload["keys"].values())
    now = clock.now()
    pk, sk = RequestItem.key(request_id), model.sort_key(connector.id)
    item = model(
        pk,
        sk,
        connector_id=connector.id,
        sealed=seal_payload(request_id, connector.id, payload),
        exceptions=json.dumps(exceptions(rules, payload["keys"])),
        kept=len(payload["keys"]),
        due_at=due_at,
        created_at=existing.created_at if existing is not None else now,
        updated_at=now,
        **index_keys(due_at, pk, sk),
    )
    item.save()
    return exceptions(rules, this_run)
