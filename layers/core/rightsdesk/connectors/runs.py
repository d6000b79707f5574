"""The record of a connector run: its statuses, its view, its reads and its moves
(rightsdesk.connectors.execution starts and stops runs; rightsdesk.connectors.steps drives them).

A run is one ExecutionItem per request and run number, with one ExecutionStepItem per connector
(shared by the request's runs, so that a resume skips the steps recorded done). Every status change
is `move`: a conditional write (the status still the one read) and an audit event on the runs'
trail, in one transaction; False when another writer moved it first.

Identities in the clear (the seed email, what connectors derived) and a rectification's corrected
values exist only in memory and, between steps, KMS-sealed in the run's item
(rightsdesk.platform.sealing, purpose `execution_identities`); messages, state machine input and
output, logs and audit events hold ids only. The sealed value goes when a run succeeds or its
request closes; a parked or stopped run keeps it for its resume.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from pynamodb.exceptions import TransactWriteError

from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import Conflict
from rightsdesk.kernel.rights import RequestType
from rightsdesk.platform.operator_identity import CONTROLLER_ACTOR_PREFIX, Actor, actor_name
from rightsdesk.store import audit
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.executions import DUE_INDEX_KEY, ExecutionItem, ExecutionStepItem
from rightsdesk.store.items.requests import RequestItem
from rightsdesk.store.items.table import transaction

log = logging.getLogger(__name__)

WAITING, RUNNING, STOPPED, FAILED, PARKED, SUCCEEDED = "waiting", "running", "stopped", "failed", "parked", "succeeded"
STATUSES = (WAITING, RUNNING, STOPPED, FAILED, PARKED, SUCCEEDED)
ACTIVE = frozenset({WAITING, RUNNING})
# step states
PENDING, RETRYING, DONE = "pending", "retrying", "done"
# an HTTP connector's product answered 202: the step waits for its callback (rightsdesk.connectors.callbacks)
WAITING_CALLBACK = "waiting_callback"

ERASE, EXPORT, RECTIFY = "erase", "export", "rectify"
ACTIONS = {
    RequestType.ERASURE.value: ERASE,
    RequestType.ACCESS.value: EXPORT,
    RequestType.PORTABILITY.value: EXPORT,
    RequestType.RECTIFICATION.value: RECTIFY,
}
SEAL_PURPOSE = "execution_identities"

# Tests (and a future per-execution cache) set this; None assumes each connector's role. Read here
# at each use (`runs.SESSION_FACTORY`), so that setting it reaches every step.
SESSION_FACTORY: Any = None

CONTROLLER_PREFIX = CONTROLLER_ACTOR_PREFIX


# ------------------------------------------------------------------ the view


@dataclass
class ExecutionView:
    """A run as the API and the CLI show it: ids, states and counts, never an identity."""

    execution_id: str
    request_id: str
    run: int
    status: str
    dry_run: bool
    not_before: str | None
    started_at: str | None
    finished_at: str | None
    steps: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    action: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _iso(moment: datetime | None) -> str | None:
    return clock.isoformat(moment) if moment else None


def planned_stages(item: ExecutionItem) -> list[list[str]]:
    """The stages of connector ids the run's plan step stored (none before it planned)."""
    return json.loads(item.stages) if item.stages else []


def step_row(
    connector_id: str, stage: int | None, *, state: str, run: int | None, attempts: int, outcome: Mapping[str, Any]
) -> dict[str, Any]:
    """One step as the API and the CLI show it, from its outcome's counts (a run's or a dry run's)."""
    return {
        "connector_id": connector_id,
        "stage": stage,
        "state": state,
        "run": run,
        "attempts": attempts,
        "result": outcome.get("result"),
        "found": outcome.get("found"),
        "erased": outcome.get("erased"),
        "kept": outcome.get("kept"),
        "remaining": outcome.get("remaining"),
        "failure": (outcome.get("failure") or {}).get("code"),
        "rectified": outcome.get("rectified"),
    }


def _step_row(connector_id: str, stage: int | None, step: ExecutionStepItem | None) -> dict[str, Any]:
    if step is None:
        return step_row(connector_id, stage, state=PENDING, run=None, attempts=0, outcome={})
    return step_row(
        connector_id,
        stage,
        state=step.state,
        run=int(step.run),
        attempts=int(step.attempts or 0),
        outcome=json.loads(step.outcome) if step.outcome else {},
    )


def view_of(item: ExecutionItem) -> ExecutionView:
    """The run as the API and the CLI show it: its planned steps by stage, then any step of an earlier run."""
    steps = {s.connector_id: s for s in step_items(item.request_id)}
    rows = []
    seen = set()
    for number, stage in enumerate(planned_stages(item), start=1):
        for connector_id in stage:
            rows.append(_step_row(connector_id, number, steps.get(connector_id)))
            seen.add(connector_id)
    for connector_id, step in sorted(steps.items()):
        if connector_id not in seen:  # a step of an earlier run whose connector this run did not plan
            rows.append(_step_row(connector_id, None, step))
    return ExecutionView(
        execution_id=item.execution_id,
        request_id=item.request_id,
        run=int(item.run),
        status=item.status,
        dry_run=bool(item.dry_run),
        not_before=_iso(item.not_before),
        started_at=_iso(item.started_at),
        finished_at=_iso(item.finished_at),
        steps=rows,
        reason=item.reason,
        action=item.action,
    )


# ------------------------------------------------------------------ reading


def latest_item(request_id: str) -> ExecutionItem | None:
    """The request's latest run (None: never run); rightsdesk.outbound.connector_runs reads who started it."""
    found = ExecutionItem.query(
        RequestItem.key(request_id),
        ExecutionItem.sk.startswith(ExecutionItem.SK_PREFIX),
        scan_index_forward=False,
        limit=1,
        consistent_read=True,
    )
    return next(iter(found), None)


def step_items(request_id: str) -> list[ExecutionStepItem]:
    """The request's connector steps (one per connector, shared by its runs)."""
    return list(
        ExecutionStepItem.query(
            RequestItem.key(request_id),
            ExecutionStepItem.sk.startswith(ExecutionStepItem.SK_PREFIX),
            consistent_read=True,
        )
    )


def step_item(request_id: str, connector_id: str) -> ExecutionStepItem | None:
    """One connector's step of the request (None: never tried)."""
    try:
        return ExecutionStepItem.get(
            RequestItem.key(request_id), ExecutionStepItem.sort_key(connector_id), consistent_read=True
        )
    except ExecutionStepItem.DoesNotExist:
        return None


def is_controller_run(view_or_item: Any) -> bool:
    """Whether a controller (the processor role) started the run: it reaches tenant-scoped connectors only."""
    return getattr(view_or_item, "initiated_by", None) == "controller"


# ------------------------------------------------------------------ state changes


def _trail(request_id: str) -> str:
    """The runs' audit trail: beside the request's own, so the subject's timeline shows request
    statuses only."""
    return f"EXEC#{request_id}"


def move(
    item: ExecutionItem,
    target: str,
    *,
    actor: Actor,
    reason: str | None = None,
    actions: list[Any] | None = None,
    expect: frozenset[str] | None = None,
) -> bool:
    """Move the run to `target` if it is still in `expect` (default: its status as read), with an
    audit event; False if another writer moved it first."""
    expect = expect or frozenset({item.status})
    now = clock.now()
    previous = item.status
    updates = [
        ExecutionItem.status.set(target),
        ExecutionItem.updated_at.set(now),
        *(actions or []),
    ]
    if reason is not None:
        updates.append(ExecutionItem.reason.set(reason))
    if target not in ACTIVE:
        updates.append(ExecutionItem.finished_at.set(now))
    event = audit.event(
        _trail(item.request_id),
        action=f"execution_{target}",
        actor=actor,
        at=now,
        from_status=previous,
        to_status=target,
        cause=reason,
    )
    try:
        with transaction() as tx:
            tx.update(item, actions=updates, condition=ExecutionItem.status.is_in(*expect))
            tx.save(event, condition=AuditEvent.sk.does_not_exist())
    except TransactWriteError as error:
        if any(r and r.code == "ConditionalCheckFailed" for r in error.cancellation_reasons):
            return False
        raise
    item.refresh(consistent_read=True)
    return True


def seal(request_id: str, identities: Mapping[str, Any]) -> str:
    """The identities (and corrected values) KMS-sealed for the run's item, bound to the request."""
    from rightsdesk.platform import sealing

    return sealing.seal(
        json.dumps(identities, sort_keys=True, separators=(",", ":")), purpose=SEAL_PURPOSE, owner=request_id
    )


def unseal(item: ExecutionItem) -> dict[str, Any]:
    """What the run keeps sealed, opened (empty once removed)."""
    if not item.sealed_identities:
        return {"seeds": {}, "derived": {}, "changes": {}}
    from rightsdesk.platform import sealing

    opened: dict[str, Any] = json.loads(
        sealing.unseal(item.sealed_identities, purpose=SEAL_PURPOSE, owner=item.request_id)
    )
    return opened


def sealed_run(
    seeds: Mapping[str, str], derived: Mapping[str, str], changes: Mapping[str, str] | None
) -> dict[str, Any]:
    """What a run keeps sealed: its identities and, for a rectification, the corrected values."""
    sealed: dict[str, Any] = {"seeds": dict(seeds), "derived": dict(derived)}
    if changes:
        sealed["changes"] = dict(changes)
    return sealed


def initiator_of(actor: Actor) -> tuple[str, str | None]:
    """Who started a run: `controller` (actor "controller" or "controller:<controller id>", the
    processor role: its finish sends dsr.request.executed), `operator`, or `system` (rightsdesk)."""
    name = actor_name(actor)
    if isinstance(actor, str) and (actor == "controller" or actor.startswith(CONTROLLER_PREFIX)):
        return "controller", actor.removeprefix(CONTROLLER_PREFIX) if actor != "controller" else None
    return ("operator" if name == "operator" else "system"), None


def new_run(
    request: RequestItem,
    *,
    actor: Actor,
    seeds: Mapping[str, str],
    carried: Mapping[str, str],
    tenant_id: str | None,
    not_before: datetime | None,
    previous: ExecutionItem | None,
    changes: Mapping[str, str] | None = None,
) -> ExecutionItem:
    """The request's next run, saved with its audit event: `waiting` until `not_before`, else `running`.
    Refused (execution_conflict) if `previous` changed since it was read."""
    now = clock.now()
    run = int(previous.run) + 1 if previous is not None else 1
    initiated_by, controller_id = initiator_of(actor)
    if previous is not None and previous.initiated_by == "controller" and initiated_by != "controller":
        # the operator resumes a controller's run: it stays the controller's (its tenant, its webhook)
        initiated_by, controller_id = "controller", previous.controller_id
        tenant_id = tenant_id or previous.tenant_id
    status = WAITING if not_before is not None and not_before > now else RUNNING
    item = ExecutionItem(
        RequestItem.key(request.request_id),
        ExecutionItem.sort_key(run),
        execution_id=f"ex_{request.request_id}_{run}_{secrets.token_hex(3)}"[:80],
        request_id=request.request_id,
        run=run,
        status=status,
        action=ACTIONS[request.request_type],
        dry_run=False,
        initiated_by=initiated_by,
        controller_id=controller_id,
        tenant_id=tenant_id,
        not_before=not_before,
        started_at=now if status == RUNNING else None,
        updated_at=now,
        sealed_identities=seal(request.request_id, sealed_run(seeds, carried, changes)),
        expires_at=retention.expires_at(retention.Rule.SKELETON, now),
    )
    if status == WAITING and not_before is not None:
        item.gsi2pk = DUE_INDEX_KEY
        item.gsi2sk = f"{clock.isoformat(not_before)}#{request.request_id}"
    event = audit.event(
        _trail(request.request_id),
        action=f"execution_{status}",
        actor=actor,
        at=now,
        from_status=previous.status if previous is not None else None,
        to_status=status,
        cause=f"run_{run}",
    )
    try:
        with transaction() as tx:
            tx.save(item, condition=ExecutionItem.sk.does_not_exist())
            if previous is not None:  # nobody started or resumed it meanwhile
                tx.condition_check(ExecutionItem, previous.pk, previous.sk, ExecutionItem.status == previous.status)
            tx.save(event, condition=AuditEvent.sk.does_not_exist())
    except TransactWriteError as error:
        raise Conflict("the request's execution changed meanwhile; look again", code="execution_conflict") from error
    return item


def close_for_request(item: ExecutionItem) -> None:
    """The request closed: an active run stops (its state machine too), and whatever run it was
    keeps no identities."""
    actions = [ExecutionItem.sealed_identities.remove()]
    if item.status in ACTIVE:
        actions += [ExecutionItem.gsi2pk.remove(), ExecutionItem.gsi2sk.remove()]
        if move(item, STOPPED, actor="rightsdesk", reason="request_closed", actions=actions, expect=ACTIVE):
            if item.sfn_execution_arn:
                try:
                    step_functions().stop_execution(
                        executionArn=item.sfn_execution_arn, error="Stopped", cause="request_closed"
                    )
                except Exception as error:  # noqa: BLE001 - the run is stopped: its steps do nothing more
                    log.warning("stop_execution failed", extra={"error_type": type(error).__name__})
            return
    if item.sealed_identities:
        item.update(actions=[ExecutionItem.sealed_identities.remove()])


# ------------------------------------------------------------------ what a run reaches


def run_connectors(request_id: str, *, processor: bool = False) -> list[Any]:
    """The connectors of a run. A controller's (processor) run reaches only the enabled
    tenant-scoped ones: a connector without a tenant condition would reach every tenant."""
    from rightsdesk.connectors import build, registry

    stored = registry.list_connectors()
    if processor:
        stored = [s for s in stored if s.enabled and s.definition is not None and tenant_scoped(s.definition)]
    broken = sorted(s.connector_id for s in stored if s.definition is None)
    if broken:
        raise Conflict(f"stored connectors no longer validate: {', '.join(broken)}", code="connector_invalid")
    return [build(s.definition, request_id, session_factory=SESSION_FACTORY) for s in stored]


def tenant_scoped(definition: Any) -> bool:
    """Whether the connector's definition confines it to one tenant (a controller's run needs that)."""
    return bool(getattr(definition, "tenant_scoped", False))


def step_functions() -> Any:
    """The Step Functions client (tests replace it here)."""
    from rightsdesk.platform import aws_clients

    return aws_clients.client("stepfunctions")
