"""The erasure of records kept for a legal basis once their period ends (Art. 17(3)).

`run_due`, like the retention sweeper, walks the expiry index's KEEP#<day> buckets since its last
run and reads only the items due (rightsdesk.connectors.kept_records files them): the cost
follows the due items, never the table. For each it re-runs the connector on exactly the due
keys: finds them again with the identities sealed on the item, erases those (the kind's
conditional writes apply: a record that changed hands is left alone), re-queries those keys, and
appends the outcome to the request's signed receipt (sealing it again). A legal hold on the
request stops it as it stops the sweeper: the item is filed again for after the hold (its
`until`, or the next day while it has none) and nothing is erased. A failure (connector removed
or disabled, access denied, records still there) files the item for the next day and is
reported; it is never dropped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from rightsdesk.connectors import base
from rightsdesk.connectors.kept_records import (
    BUCKET_PREFIX,
    epoch,
    exceptions,
    index_keys,
    item_model,
    moment,
    payload_of,
    seal_payload,
)
from rightsdesk.kernel import clock
from rightsdesk.kernel.retention import BUCKET_SECONDS

log = logging.getLogger(__name__)

ACTOR = "kept-records"
ERASED_EVENT = "kept_records_erased"
# GSI2 is eventually consistent: a day's bucket is closed only this long after the day ended.


@dataclass
class Report:
    now: int
    dry_run: bool = False
    buckets: int = 0
    queries: int = 0
    items_read: int = 0
    erased: int = 0  # records erased
    held: list[str] = field(default_factory=list)  # request ids under a legal hold
    failed: list[dict[str, str]] = field(default_factory=list)  # {request_id, connector_id, code}
    done: list[dict[str, Any]] = field(default_factory=list)  # {request_id, connector_id, result, erased}
    swept_through: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": clock.isoformat(moment(self.now)),
            "dry_run": self.dry_run,
            "buckets": self.buckets,
            "queries": self.queries,
            "items_read": self.items_read,
            "erased": self.erased,
            "held": self.held,
            "failed": self.failed,
            "done": self.done,
            "swept_through": None if self.swept_through is None else clock.isoformat(moment(self.swept_through)),
        }


def _hold(request_id: str) -> Any:
    from rightsdesk.store.items.requests import RequestItem

    try:
        request = RequestItem.get(
            RequestItem.key(request_id), RequestItem.SK, consistent_read=True, attributes_to_get=["legal_hold"]
        )
    except RequestItem.DoesNotExist:
        return None  # the skeleton's three years are over: nothing holds the request any more
    return request.legal_hold


def _refile(item: Any, at: int, *, held: bool = False) -> None:
    model = type(item)
    actions = [
        model.due_at.set(at),
        model.updated_at.set(clock.now()),
        *[getattr(model, name).set(value) for name, value in index_keys(at, item.pk, item.sk).items()],
    ]
    if held:
        actions.append(model.held_at.set(clock.now()))
    item.update(actions=actions, condition=model.updated_at == item.updated_at)


SessionFactory = Callable[[Any, str], Any]


def run_due(
    *,
    now: int | None = None,
    signer: Any = None,
    session_factory: SessionFactory | None = None,
    dry_run: bool = False,
    max_items: int | None = None,
) -> Report:
    """Erase every kept record whose period has ended by `now` (default: the clock). `signer`
    (rightsdesk.connectors.receipts.Signer) appends each erasure to the request's receipt; a dry run
    reads and reports what is due, writes nothing."""
    now = clock.epoch() if now is None else now
    report = Report(now=now, dry_run=dry_run)
    from rightsdesk.store import due_index
    from rightsdesk.store.items.kept_records import KeptSweepState

    state = due_index.progress(KeptSweepState)
    report.items_read += 1 if state is not None else 0
    swept, floor = due_index.start(state)
    model = item_model()
    handled = 0
    contiguous = True
    for bucket in due_index.buckets(swept, floor, now):
        report.buckets += 1
        report.queries += 1
        complete = True
        entries = list(model.by_expiry.query(f"{BUCKET_PREFIX}{bucket}", model.gsi2sk < due_index.due_bound(now)))
        report.items_read += len(entries)
        for entry in entries:
            if max_items is not None and handled >= max_items:
                return report
            handled += 1
            try:
                item = model.get(entry.pk, entry.sk, consistent_read=True)
            except model.DoesNotExist:
                continue
            report.items_read += 1
            if int(item.due_at) > now:
                continue  # filed again since the index was read
            complete &= _one(item, now, signer, session_factory, dry_run, report)
        contiguous &= complete
        if contiguous and not dry_run and due_index.closable(bucket, now):
            report.swept_through = bucket
    if report.swept_through is not None:
        due_index.record_progress(KeptSweepState, report.swept_through)
    return report


def _one(item: Any, now: int, signer: Any, session_factory: Any, dry_run: bool, report: Report) -> bool:
    """Handle one due item; True once it is dealt with for now (erased, held or refiled)."""
    request_id, connector_id = item.pk.removeprefix("REQ#"), item.connector_id
    hold = _hold(request_id)
    if hold is not None:
        report.held.append(request_id)
        if not dry_run:
            until = epoch(hold.until) if hold.until is not None else 0
            _refile(item, max(now + BUCKET_SECONDS, until), held=True)
        return True
    if dry_run:
        report.done.append({"request_id": request_id, "connector_id": connector_id, "result": "due"})
        return True
    try:
        outcome, rest = _erase(item, now, session_factory)
    except Exception as error:  # noqa: BLE001 - reported and retried tomorrow, never dropped
        code = error.code if isinstance(error, base.ConnectorFailure) else type(error).__name__
        log.warning("kept records: erasure failed (%s); filed for the next day", code)
        report.failed.append({"request_id": request_id, "connector_id": connector_id, "code": code})
        _refile(item, now + BUCKET_SECONDS)
        return True
    if signer is not None:
        from rightsdesk.connectors import receipts

        receipts.record(
            request_id,
            receipts.from_connector_outcome(outcome),
            signer=signer,
            step_id=f"kept:{connector_id}:{int(item.due_at)}",
        )
        receipts.seal(request_id, signer=signer)
    _audit(request_id)
    report.erased += outcome.erased
    report.done.append(
        {"request_id": request_id, "connector_id": connector_id, "result": outcome.result, "erased": outcome.erased}
    )
    if outcome.result == base.FAILED:
        report.failed.append({"request_id": request_id, "connector_id": connector_id, "code": "records_remain"})
        _refile(item, now + BUCKET_SECONDS)
    elif rest is None:
        item.delete(condition=type(item).updated_at == item.updated_at)
    else:
        _keep_rest(item, rest)
    return True


def _erase(item: Any, now: int, session_factory: Any) -> tuple[base.Outcome, dict[str, Any] | None]:
    """Erase the item's due keys: (the outcome, the payload of the keys still kept or None)."""
    from rightsdesk.connectors import build, registry
    from rightsdesk.kernel.errors import NotFound

    request_id, connector_id = item.pk.removeprefix("REQ#"), item.connector_id
    payload = payload_of(item)
    due = {key for key, entry in payload["keys"].items() if int(entry["due_at"]) <= now}
    try:
        stored = registry.get(connector_id)
    except NotFound:
        raise base.ConnectorFailure("connector_removed") from None
    if stored.definition is None or not stored.enabled:
        raise base.ConnectorFailure("connector_unavailable")
    connector = build(stored.definition, request_id, session_factory=session_factory)
    identities = payload["identities"]
    started = clock.now()
    found = connector.find(identities)
    subset = replace(found, records=tuple(record for record in found.records if record.key in due))
    erased = connector.erase(subset) if subset.count else base.Erased()
    again = connector.find(identities)
    remaining = sum(1 for record in again.records if record.key in due)
    rest_keys = {key: entry for key, entry in payload["keys"].items() if key not in due}
    outcome = base.Outcome(
        connector_id=connector.id,
        kind=connector.kind,
        role_arn=getattr(connector.definition, "role_arn", None),
        action="erase",
        result=base.FAILED if remaining else (base.DONE if subset.count else base.NOTHING_FOUND),
        started_at=clock.isoformat(started),
        found=subset.count,
        erased=erased.erased,
        kept=len(rest_keys),
        changed_hands=erased.changed_hands,
        remaining=remaining,
        touched=sorted(set(erased.touched) | set(subset.key_hashes())),
        identities={kind: base.identity_hash(kind, value) for kind, value in sorted(identities.items())},
        legal_exceptions=exceptions(connector.definition.keep_rules, rest_keys),
        failure={"code": "records_remain"} if remaining else None,
    )
    outcome.finished_at = clock.isoformat(clock.now())
    return outcome, ({**payload, "keys": rest_keys} if rest_keys else None)


def _keep_rest(item: Any, rest: dict[str, Any]) -> None:
    """The keys still kept (a later rule's period): sealed again, filed at the next due time."""
    request_id = item.pk.removeprefix("REQ#")
    model = type(item)
    due_at = min(int(entry["due_at"]) for entry in rest["keys"].values())
    from rightsdesk.connectors import registry

    rules = registry.get(item.connector_id).definition.keep_rules
    item.update(
        actions=[
            model.sealed.set(seal_payload(request_id, item.connector_id, rest)),
            model.exceptions.set(json.dumps(exceptions(rules, rest["keys"]))),
            model.kept.set(len(rest["keys"])),
            model.due_at.set(due_at),
            model.updated_at.set(clock.now()),
            *[getattr(model, name).set(value) for name, value in index_keys(due_at, item.pk, item.sk).items()],
        ],
        condition=model.updated_at == item.updated_at,
    )


def _audit(request_id: str) -> None:
    from rightsdesk.store import audit
    from rightsdesk.store.items.audit import AuditEvent
    from rightsdesk.store.items.requests import RequestItem

    event = audit.event(RequestItem.key(request_id), action=ERASED_EVENT, actor=ACTOR)
    event.save(condition=AuditEvent.sk.does_not_exist())
