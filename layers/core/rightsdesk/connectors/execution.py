"""Carrying a request out through its connectors, one AWS Step Functions execution per run
(docs/connectors.md, "Orchestration").

A run is started (`start`), or scheduled after the erasure grace period (`schedule`, begun by
`begin_due`), and then driven by the state machine (statemachines/connector_execution.asl.json),
whose every task is a message on the ConnectorTaskQueue answered by the ConnectorWorkerFunction
with SendTaskSuccess or SendTaskFailure. The worker calls, per message:

- `plan_step`: resolve the identities (rightsdesk.connectors.identity_graph) and answer the stages
  of connector ids (erasure: dependents first, so that a resumed run can still derive what the
  remaining connectors need; export: in graph order);
- `connector_step`: one connector's erasure and re-query (or export). Idempotent: a step recorded
  done is never done again, in this run or a later one (a resume skips it);
- `finish_step`: seal the receipt and close the run (rightsdesk.outbound.connector_runs adds what
  the request's owner does then);
- `park`: the state machine's Catch: the run waits for the operator (an alarm fires).

A connector that fails is retried with backoff by the worker on the injectable clock (`RetryStep`
carries the delay; the queue brings the message back), until `MAX_ATTEMPTS` or the step timeout,
then it fails the task (`StepFailed`) and the state machine parks the run. `stop` stops the state
machine and marks the run stopped; every step re-checks the run first (`StepSkipped`), so a run
stops between connectors. A resume is a new run (`start` again on a stopped, failed or parked
request): it skips the steps recorded done.

A rectification the operator approved runs the same way (action `rectify`, `start(changes=...)`):
the corrected values are sealed with the identities (`changes`), written by each connector that
declares the field rectifiable, and read back (rightsdesk.connectors.base.rectify_and_verify).

Identities in the clear (the seed email, what connectors derived) and a rectification's corrected
values exist only in memory and, between steps, KMS-sealed in the run's item (rightsdesk.platform.sealing, purpose `execution_identities`);
messages, state machine input and output, logs and audit events hold ids only. The sealed value
goes when a run succeeds; a parked or stopped run keeps it for its resume.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError, UpdateError

from rightsdesk.connectors import base
from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import Conflict, InvalidInput, NotFound
from rightsdesk.kernel.retry import RetrySchedule
from rightsdesk.kernel.rights import RequestType
from rightsdesk.kernel.status import is_open
from rightsdesk.platform import config
from rightsdesk.platform.operator_identity import Actor, actor_name
from rightsdesk.store import audit, queries
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.executions import DUE_INDEX_KEY, ExecutionItem, ExecutionStepItem
from rightsdesk.store.items.requests import RequestItem
from rightsdesk.store.items.table import transaction

log = logging.getLogger(__name__)

WAITING, RUNNING, STOPPED, FAILED, PARKED, SUCCEEDED = "waiting", "running", "stopped", "failed", "parked", "succeeded"
STATUSES = (WAITING, RUNNING, STOPPED, FAILED, PARKED, SUCCEEDED)
ACTIVE = frozenset({WAITING, RUNNING})
RESUMABLE = frozenset({STOPPED, FAILED, PARKED})
# step states
PENDING, RETRYING, DONE = "pending", "retrying", "done"
# an HTTP connector's product answered 202: the step waits for its callback (rightsdesk.connectors.callbacks)
WAITING_CALLBACK = "waiting_callback"
# A failed task's error name carries the reason (`rightsdesk.access_denied`): the state machine's
# Catch hands it to the park step. Step Functions' answers when the task is gone: the run was
# stopped, timed out, or the step answered already.
TASK_ERROR_PREFIX = "rightsdesk."
TASK_GONE = frozenset({"TaskDoesNotExist", "TaskTimedOut", "InvalidToken", "ExecutionDoesNotExist"})

ERASE, EXPORT, RECTIFY = "erase", "export", "rectify"
ACTIONS = {
    RequestType.ERASURE.value: ERASE,
    RequestType.ACCESS.value: EXPORT,
    RequestType.PORTABILITY.value: EXPORT,
    RequestType.RECTIFICATION.value: RECTIFY,
}
SEAL_PURPOSE = "execution_identities"
PLAN_STEP = "plan"

# A connector that fails comes back after these delays (the worker's message visibility), at most
# MAX_ATTEMPTS times in all and within the step timeout; then its request parks.
RETRY = RetrySchedule((30, 120, 600, 1800))
MAX_ATTEMPTS = 5
SETTLED = frozenset({base.DONE, base.NOTHING_FOUND, base.KEPT_FOR_LEGAL_BASIS})

# Tests (and a future per-execution cache) set this; None assumes each connector's role.
SESSION_FACTORY: Any = None

CONTROLLER_PREFIX = "controller:"


class RetryStep(Exception):
    """The step failed and will be tried again after `delay` seconds (the queue brings it back)."""

    def __init__(self, code: str, delay: int):
        super().__init__(code)
        self.code = code
        self.delay = delay


class StepFailed(Exception):
    """The step cannot succeed: the task fails and the state machine parks the run. `code` is a
    stable word (a connector's failure code, `parked_ambiguous`, `step_timeout`)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


class StepAwaitingCallback(Exception):
    """The product answers later through the step's callback URL: the task is not answered now
    (the callback route answers it, or the deadline fails it)."""


class StepSkipped(Exception):
    """The run is no longer running (stopped, or a newer run): the step does nothing, answers nothing."""


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


def _stages(item: ExecutionItem) -> list[list[str]]:
    return json.loads(item.stages) if item.stages else []


def _step_row(connector_id: str, stage: int | None, step: ExecutionStepItem | None) -> dict[str, Any]:
    outcome = json.loads(step.outcome) if step is not None and step.outcome else {}
    return {
        "connector_id": connector_id,
        "stage": stage,
        "state": step.state if step is not None else PENDING,
        "run": int(step.run) if step is not None else None,
        "attempts": int(step.attempts or 0) if step is not None else 0,
        "result": outcome.get("result"),
        "found": outcome.get("found"),
        "erased": outcome.get("erased"),
        "kept": outcome.get("kept"),
        "remaining": outcome.get("remaining"),
        "failure": (outcome.get("failure") or {}).get("code"),
        "rectified": outcome.get("rectified"),
    }


def _view(item: ExecutionItem) -> ExecutionView:
    steps = {s.connector_id: s for s in _steps(item.request_id)}
    rows = []
    seen = set()
    for number, stage in enumerate(_stages(item), start=1):
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


def _latest(request_id: str) -> ExecutionItem | None:
    found = ExecutionItem.query(
        RequestItem.key(request_id),
        ExecutionItem.sk.startswith(ExecutionItem.SK_PREFIX),
        scan_index_forward=False,
        limit=1,
        consistent_read=True,
    )
    return next(iter(found), None)


def _steps(request_id: str) -> list[ExecutionStepItem]:
    return list(
        ExecutionStepItem.query(
            RequestItem.key(request_id),
            ExecutionStepItem.sk.startswith(ExecutionStepItem.SK_PREFIX),
            consistent_read=True,
        )
    )


def _step(request_id: str, connector_id: str) -> ExecutionStepItem | None:
    try:
        return ExecutionStepItem.get(
            RequestItem.key(request_id), ExecutionStepItem.sort_key(connector_id), consistent_read=True
        )
    except ExecutionStepItem.DoesNotExist:
        return None


def view(request_id: str) -> ExecutionView | None:
    """The latest run of the request (None: never executed)."""
    item = _latest(request_id)
    return _view(item) if item is not None else None


def enabled_connectors_exist() -> bool:
    """Whether any stored connector runs for real: only then does a request go through a run."""
    from rightsdesk.connectors import registry

    return any(stored.enabled for stored in registry.list_connectors())


# ------------------------------------------------------------------ state changes


def _trail(request_id: str) -> str:
    """The runs' audit trail: beside the request's own, so the subject's timeline shows request
    statuses only."""
    return f"EXEC#{request_id}"


def _move(
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


def _seal(request_id: str, identities: Mapping[str, Any]) -> str:
    from rightsdesk.platform import sealing

    return sealing.seal(
        json.dumps(identities, sort_keys=True, separators=(",", ":")), purpose=SEAL_PURPOSE, owner=request_id
    )


def _unseal(item: ExecutionItem) -> dict[str, Any]:
    if not item.sealed_identities:
        return {"seeds": {}, "derived": {}, "changes": {}}
    from rightsdesk.platform import sealing

    opened: dict[str, Any] = json.loads(
        sealing.unseal(item.sealed_identities, purpose=SEAL_PURPOSE, owner=item.request_id)
    )
    return opened


def _sealed_run(
    seeds: Mapping[str, str], derived: Mapping[str, str], changes: Mapping[str, str] | None
) -> dict[str, Any]:
    """What a run keeps sealed: its identities and, for a rectification, the corrected values."""
    sealed: dict[str, Any] = {"seeds": dict(seeds), "derived": dict(derived)}
    if changes:
        sealed["changes"] = dict(changes)
    return sealed


def _request(request_id: str) -> RequestItem:
    request = queries.load_request(request_id)
    if request.request_type not in ACTIONS:
        raise InvalidInput(
            f"a {request.request_type} request is not carried out through connectors",
            fields={"request_id": "erasure, access, portability or rectification requests only"},
        )
    return request


def _seeds(
    request: RequestItem, identities: Mapping[str, str] | None, tenant_id: str | None, *, processor: bool = False
) -> dict[str, str]:
    """The identities a run starts from. A controller's (processor) run starts from what the
    controller gave and its own tenant only: never from a tenant id among the identities, never
    from the request's address."""
    if processor:
        from rightsdesk.connectors.definitions import TENANT_IDENTITY

        if not tenant_id:
            raise Conflict("a controller's run needs the controller's tenant", code="no_tenant")
        identities = {kind: value for kind, value in (identities or {}).items() if kind != TENANT_IDENTITY}
    if identities is not None:
        seeds = {str(kind): str(value) for kind, value in identities.items() if str(value)}
    elif request.email and request.personal_purged_at is None:
        seeds = {"email": request.email}
    else:
        seeds = {}
    if tenant_id:
        seeds["tenant_id"] = tenant_id
    if not seeds:
        raise Conflict(
            "the request holds no identity any more (its personal fields were purged); give the identities",
            code="no_identity",
        )
    return seeds


def _initiated_by(actor: Actor) -> tuple[str, str | None]:
    """Who started a run: `controller` (actor "controller" or "controller:<controller id>", the
    processor role: its finish sends dsr.request.executed), `operator`, or `system` (rightsdesk)."""
    name = actor_name(actor)
    if isinstance(actor, str) and (actor == "controller" or actor.startswith(CONTROLLER_PREFIX)):
        return "controller", actor.removeprefix(CONTROLLER_PREFIX) if actor != "controller" else None
    return ("operator" if name == "operator" else "system"), None


def _new_run(
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
    now = clock.now()
    run = int(previous.run) + 1 if previous is not None else 1
    initiated_by, controller_id = _initiated_by(actor)
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
        sealed_identities=_seal(request.request_id, _sealed_run(seeds, carried, changes)),
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


def _checked_start(request_id: str, previous: ExecutionItem | None) -> RequestItem:
    request = _request(request_id)
    if not is_open(request.status):
        raise Conflict(f"a {request.status} request is not carried out any more", code="request_closed")
    if previous is not None and previous.status == RUNNING:
        raise Conflict("the request's connectors are running already", code="execution_running")
    if previous is not None and previous.status == SUCCEEDED:
        raise Conflict("the request's connectors have run to the end already", code="execution_succeeded")
    return request


def start(
    request_id: str,
    *,
    actor: Actor,
    identities: Mapping[str, str] | None = None,
    tenant_id: str | None = None,
    dry_run: bool = False,
    changes: Mapping[str, str] | None = None,
) -> ExecutionView:
    """Run the request's connectors (a new run; a stopped, failed or parked one resumes, skipping
    the steps recorded done), or, `dry_run`, show what each would touch and write nothing. A run
    waiting out the grace period starts now. A rectification's run writes `changes` (subject-facing
    field -> corrected value, sealed with the identities); its resume reuses them when none are given."""
    previous = _latest(request_id)
    processor = _initiated_by(actor)[0] == "controller" or (previous is not None and is_controller_run(previous))
    if dry_run:
        request = _request(request_id)
        return _dry_run(request, _seeds(request, identities, tenant_id, processor=processor), processor=processor)
    request = _checked_start(request_id, previous)
    if previous is not None and previous.status == WAITING:
        _begin(previous, actor=actor)
        return _view(previous)
    carried: dict[str, str] = {}
    earlier_changes: dict[str, str] = {}
    if previous is not None and identities is None:
        sealed = _unseal(previous)
        carried = dict(sealed.get("derived") or {})
        earlier_changes = dict(sealed.get("changes") or {})
        seeds = dict(sealed.get("seeds") or {}) or _seeds(request, None, tenant_id, processor=processor)
    else:
        seeds = _seeds(request, identities, tenant_id, processor=processor)
    changes = dict(changes) if changes else earlier_changes
    if ACTIONS[request.request_type] == RECTIFY and not changes:
        raise InvalidInput(
            "a rectification runs with the corrections the operator approved (`requests resolve`)",
            fields={"changes": "required"},
        )
    item = _new_run(
        request,
        actor=actor,
        seeds=seeds,
        carried=carried,
        tenant_id=tenant_id,
        not_before=None,
        previous=previous,
        changes=changes if ACTIONS[request.request_type] == RECTIFY else None,
    )
    _start_machine(item)
    return _view(item)


def schedule(
    request_id: str, *, not_before: datetime, actor: Actor, identities: Mapping[str, str] | None = None
) -> ExecutionView:
    """A run that waits until `not_before` (the erasure grace period), then starts by itself
    (`begin_due`); `stop` meanwhile, or the subject's cancellation, keeps it from starting.
    `identities` as for `start` (None: the request's verified email)."""
    previous = _latest(request_id)
    if previous is not None and previous.status == WAITING:
        return _view(previous)  # a retried carry-out schedules once
    request = _checked_start(request_id, previous)
    item = _new_run(
        request,
        actor=actor,
        seeds=_seeds(request, identities, None),
        carried={},
        tenant_id=None,
        not_before=not_before,
        previous=previous,
    )
    if item.status == RUNNING:
        _start_machine(item)
    return _view(item)


def _begin(item: ExecutionItem, *, actor: Actor) -> bool:
    started = _move(
        item,
        RUNNING,
        actor=actor,
        actions=[
            ExecutionItem.started_at.set(clock.now()),
            ExecutionItem.gsi2pk.remove(),
            ExecutionItem.gsi2sk.remove(),
        ],
        expect=frozenset({WAITING}),
    )
    if started:
        _start_machine(item)
    return started


def begin_due(now: datetime | None = None, limit: int = 100) -> list[str]:
    """Start every run whose grace period has passed (a query of the due index: its cost follows
    the runs that are due). A run whose request was closed meanwhile (the subject cancelled it) is
    stopped instead. Returns the request ids started."""
    now = now or clock.now()
    due = ExecutionItem.by_expiry.query(
        DUE_INDEX_KEY, ExecutionItem.gsi2sk <= f"{clock.isoformat(now)}#\uffff", limit=limit
    )
    started = []
    for key in due:
        try:
            item = ExecutionItem.get(key.pk, key.sk, consistent_read=True)
        except ExecutionItem.DoesNotExist:
            continue
        if item.status != WAITING or item.not_before is None or item.not_before > now:
            continue
        try:
            request = queries.load_request(item.request_id)
            open_request = is_open(request.status)
        except NotFound:
            open_request = False
        if not open_request:
            _move(
                item,
                STOPPED,
                actor="rightsdesk",
                reason="request_closed",
                actions=[
                    ExecutionItem.gsi2pk.remove(),
                    ExecutionItem.gsi2sk.remove(),
                    ExecutionItem.sealed_identities.remove(),
                ],
                expect=frozenset({WAITING}),
            )
            continue
        if _begin(item, actor="rightsdesk"):
            started.append(item.request_id)
    return started


def _sfn() -> Any:
    from rightsdesk.platform import aws_clients

    return aws_clients.client("stepfunctions")


def _start_machine(item: ExecutionItem) -> None:
    """StartExecution, named after the run (a repeated start of one run is refused by Step
    Functions, so a retry cannot run it twice). The input holds ids only."""
    arn = config.connector_state_machine_arn()
    if not arn:
        raise Conflict(
            "no connector state machine is configured (CONNECTOR_STATE_MACHINE_ARN)", code="no_state_machine"
        )
    payload = {"request_id": item.request_id, "execution_id": item.execution_id, "run": int(item.run)}
    try:
        answer = _sfn().start_execution(stateMachineArn=arn, name=item.execution_id, input=json.dumps(payload))
    except Exception as error:
        code = ((getattr(error, "response", None) or {}).get("Error") or {}).get("Code")
        if code != "ExecutionAlreadyExists":
            _move(item, FAILED, actor="rightsdesk", reason="start_failed")
            raise
        return
    item.update(actions=[ExecutionItem.sfn_execution_arn.set(answer["executionArn"])])


def stop(request_id: str, *, actor: Actor) -> ExecutionView:
    """Stop the request's run: a waiting one never starts, a running one stops between connectors
    (the connector at work finishes its step; no other starts). Resume with `start`."""
    item = _latest(request_id)
    if item is None:
        raise NotFound(f"request {request_id} has no execution", code="no_execution")
    if item.status not in ACTIVE:
        raise Conflict(f"the execution is {item.status}, not running or waiting", code="execution_not_active")
    if not _move(
        item,
        STOPPED,
        actor=actor,
        reason="stopped_by_operator",
        actions=[ExecutionItem.gsi2pk.remove(), ExecutionItem.gsi2sk.remove()],
        expect=ACTIVE,
    ):
        raise Conflict("the execution changed meanwhile; look again", code="execution_conflict")
    if item.sfn_execution_arn:
        try:
            _sfn().stop_execution(executionArn=item.sfn_execution_arn, error="Stopped", cause="stopped_by_operator")
        except Exception as error:  # noqa: BLE001 - the run is marked stopped: its steps do nothing more
            log.warning("stop_execution failed", extra={"request_id": request_id, "error_type": type(error).__name__})
    return _view(item)


# ------------------------------------------------------------------ dry run


def _connectors(request_id: str, *, processor: bool = False) -> list[Any]:
    """The connectors of a run. A controller's (processor) run reaches only the enabled
    tenant-scoped ones: a connector without a tenant condition would reach every tenant."""
    from rightsdesk.connectors import build, registry

    stored = registry.list_connectors()
    if processor:
        stored = [s for s in stored if s.enabled and s.definition is not None and _tenant_scoped(s.definition)]
    broken = sorted(s.connector_id for s in stored if s.definition is None)
    if broken:
        raise Conflict(f"stored connectors no longer validate: {', '.join(broken)}", code="connector_invalid")
    return [build(s.definition, request_id, session_factory=SESSION_FACTORY) for s in stored]


def _dry_run(request: RequestItem, seeds: Mapping[str, str], *, processor: bool = False) -> ExecutionView:
    from rightsdesk.connectors import identity_graph
    from rightsdesk.connectors.definitions import DefinitionError

    try:
        resolution = identity_graph.resolve(_connectors(request.request_id, processor=processor), seeds)
    except DefinitionError as error:
        raise InvalidInput(error.message, fields=error.fields) from None
    rows = []
    for number, stage in enumerate(resolution.plan.stages, start=1):
        for connector_id in stage:
            outcome = resolution.outcomes.get(connector_id)
            rows.append(
                {
                    "connector_id": connector_id,
                    "stage": number,
                    "state": "planned",
                    "run": None,
                    "attempts": 0,
                    "result": outcome.result if outcome else None,
                    "found": outcome.found if outcome else 0,
                    "erased": 0,
                    "kept": 0,
                    "remaining": None,
                    "failure": (outcome.failure or {}).get("code") if outcome else None,
                }
            )
    now = clock.isoformat(clock.now())
    return ExecutionView(
        execution_id="dry-run",
        request_id=request.request_id,
        run=0,
        status=PARKED if resolution.parked else SUCCEEDED,
        dry_run=True,
        not_before=None,
        started_at=now,
        finished_at=now,
        steps=rows,
        reason="ambiguous_identity" if resolution.parked else None,
        action=ACTIONS[request.request_type],
    )


# ------------------------------------------------------------------ the worker's steps


def _running(request_id: str, execution_id: str) -> ExecutionItem:
    item = _latest(request_id)
    if item is None or item.execution_id != execution_id or item.status != RUNNING:
        raise StepSkipped(execution_id)
    return item


def _request_allows(item: ExecutionItem) -> None:
    """The request still wants the run. Closed meanwhile (the subject cancelled it): the run stops
    here, its identities go, and nothing more runs. Under a legal hold, an erasure parks as the
    sweeper stops (what was erased stays erased; nothing more is) until the hold is released and the
    run resumed."""
    try:
        request = RequestItem.get(
            RequestItem.key(item.request_id),
            RequestItem.SK,
            consistent_read=True,
            attributes_to_get=["legal_hold", "status"],
        )
    except RequestItem.DoesNotExist:
        request = None
    if request is None or not is_open(request.status):
        _close_for_request(item)
        raise StepSkipped(item.execution_id)
    if item.action == ERASE and request.legal_hold is not None:
        raise StepFailed("legal_hold")


def _close_for_request(item: ExecutionItem) -> None:
    """The request closed: an active run stops (its state machine too), and whatever run it was
    keeps no identities."""
    actions = [ExecutionItem.sealed_identities.remove()]
    if item.status in ACTIVE:
        actions += [ExecutionItem.gsi2pk.remove(), ExecutionItem.gsi2sk.remove()]
        if _move(item, STOPPED, actor="rightsdesk", reason="request_closed", actions=actions, expect=ACTIVE):
            if item.sfn_execution_arn:
                try:
                    _sfn().stop_execution(executionArn=item.sfn_execution_arn, error="Stopped", cause="request_closed")
                except Exception as error:  # noqa: BLE001 - the run is stopped: its steps do nothing more
                    log.warning("stop_execution failed", extra={"error_type": type(error).__name__})
            return
    if item.sealed_identities:
        item.update(actions=[ExecutionItem.sealed_identities.remove()])


def forget_identities(request_id: str) -> None:
    """The request was closed (the subject cancelled it, the operator rejected or answered it):
    its latest run stops if it waits, and keeps no identities. A running run is left to its next
    step, which finds the request closed and stops there (so the caller needs no Step Functions
    grant). Nothing if it never ran."""
    item = _latest(request_id)
    if item is not None and item.status != RUNNING and (item.sealed_identities or item.status in ACTIVE):
        _close_for_request(item)


def _retry_or_fail(code: str, attempt: int, first_attempt_at: datetime | None) -> RetryStep:
    timeout = timedelta(seconds=config.connector_step_timeout_seconds())
    timed_out = first_attempt_at is not None and clock.now() - first_attempt_at >= timeout
    if attempt >= MAX_ATTEMPTS:
        raise StepFailed(code)
    if timed_out:
        raise StepFailed("step_timeout")
    return RetryStep(code, RETRY.delay(attempt))


def plan_step(request_id: str, execution_id: str, *, attempt: int = 1) -> dict[str, Any]:
    """Resolve the identities for this run and answer its stages (connector ids only)."""
    from rightsdesk.connectors import identity_graph
    from rightsdesk.connectors.definitions import DefinitionError

    item = _running(request_id, execution_id)
    _request_allows(item)
    sealed = _unseal(item)
    seeds = dict(sealed.get("seeds") or {})
    try:
        connectors = _connectors(request_id, processor=is_controller_run(item))
        resolution = identity_graph.resolve(connectors, seeds)
    except DefinitionError:
        raise StepFailed("connectors_invalid") from None
    except Conflict as error:
        raise StepFailed(error.code or "connectors_invalid") from None
    if resolution.parked:
        raise StepFailed("ambiguous_identity")
    # A find that failed matters here only where others need what it yields; a connector that
    # yields nothing fails (and is retried) in its own step.
    yielders = {connector.id for connector in connectors if connector.yields}
    failed = sorted(i for i, o in resolution.outcomes.items() if o.result == base.FAILED and i in yielders)
    if failed:
        raise _retry_or_fail("identity_unavailable", attempt, item.started_at)
    # A kind an earlier run derived, whose source has been erased since, still reaches its dependents.
    derived = {
        **dict(sealed.get("derived") or {}),
        **{k: v for k, v in resolution.identities.items() if k not in seeds},
    }
    stages = [list(stage) for stage in resolution.plan.stages]
    if item.action == ERASE:
        stages.reverse()
    try:
        item.update(
            actions=[
                ExecutionItem.stages.set(json.dumps(stages)),
                ExecutionItem.sealed_identities.set(
                    _seal(request_id, _sealed_run(seeds, derived, sealed.get("changes")))
                ),
                ExecutionItem.updated_at.set(clock.now()),
            ],
            condition=ExecutionItem.status == RUNNING,
        )
    except UpdateError as error:
        raise StepSkipped(execution_id) from error
    return {"stages": stages}


def _skipped_outcome(connector: Any, action: str) -> base.Outcome:
    now = clock.isoformat(clock.now())
    return base.Outcome(
        connector_id=connector.id,
        kind=connector.kind,
        role_arn=getattr(connector.definition, "role_arn", None),
        action=action,
        result=base.NOTHING_FOUND,
        started_at=now,
        finished_at=now,
    )


def _save_step(
    item: ExecutionItem, connector_id: str, state: str, *, attempt: int, outcome: base.Outcome | None, first: datetime
) -> None:
    now = clock.now()
    step = ExecutionStepItem(
        item.pk,
        ExecutionStepItem.sort_key(connector_id),
        connector_id=connector_id,
        state=state,
        run=int(item.run),
        execution_id=item.execution_id,
        attempts=attempt,
        first_attempt_at=first,
        updated_at=now,
        outcome=outcome.to_json() if outcome is not None else None,
        expires_at=retention.expires_at(retention.Rule.SKELETON, now),
    )
    try:  # a step recorded done stays as it is
        step.save(condition=ExecutionStepItem.state.does_not_exist() | (ExecutionStepItem.state != DONE))
    except PutError as error:
        from rightsdesk.store.deletion import conditional_failure

        if not conditional_failure(error):
            raise


def erase_kept_records_due() -> int:
    """Erase the records kept for a legal basis whose period has ended (rightsdesk.connectors.
    kept_erasure), each appended to its request's receipt; how many were erased."""
    from rightsdesk.connectors import kept_erasure

    report = kept_erasure.run_due(signer=_signer(), session_factory=SESSION_FACTORY)
    return report.erased


def _signer() -> Any:
    from rightsdesk.connectors import receipts

    key_id = config.receipt_signing_key_id()
    if not key_id:
        raise Conflict("no receipt signing key is configured (RECEIPT_SIGNING_KEY_ID)", code="no_signing_key")
    return receipts.KmsSigner(key_id)


def _record(request_id: str, execution_id: str, outcome: base.Outcome) -> None:
    """The outcome as a signed receipt entry, once per run and connector (a retried step finds it)."""
    from rightsdesk.connectors import receipts

    result = {base.PARKED_TOO_MANY: base.FAILED}.get(outcome.result, outcome.result)
    # Records kept for a legal basis are named in the entry (Art. 17(3)): basis, period, until when.
    entry = receipts.from_connector_outcome(replace(outcome, result=result))
    receipts.record(request_id, entry, signer=_signer(), step_id=f"{execution_id}:{outcome.connector_id}")


def _summary(connector_id: str, outcome: dict[str, Any]) -> dict[str, Any]:
    """What a step answers the state machine: counts and words, no hash, no identity."""
    keep = ("result", "found", "erased", "kept", "remaining", "rectified")
    return {"connector_id": connector_id, **{k: outcome.get(k) for k in keep}}


def connector_step(
    request_id: str, execution_id: str, connector_id: str, *, attempt: int = 1, task_token: str | None = None
) -> dict[str, Any]:
    """One connector's part of the run: erase and re-query (erasure) or gather its records (access,
    portability), recorded in the receipt. A step recorded done answers what it recorded.

    With the task's token, an HTTP connector's erase or export offers the product a one-time
    callback URL (rightsdesk.connectors.callbacks); a product answering 202 leaves the step
    `waiting_callback` (StepAwaitingCallback: the task is answered by the callback route)."""
    from rightsdesk.connectors import build, registry

    item = _running(request_id, execution_id)  # stopped: nothing more starts
    step = _step(request_id, connector_id)
    if step is not None and step.state == DONE:
        return _summary(connector_id, json.loads(step.outcome or "{}"))
    _request_allows(item)
    first = step.first_attempt_at if step is not None and step.execution_id == execution_id else None
    first = first or clock.now()
    try:
        stored = registry.get(connector_id)
    except NotFound:
        raise StepFailed("connector_removed") from None
    if stored.definition is None:
        raise StepFailed("connector_invalid")
    if is_controller_run(item) and not (stored.enabled and _tenant_scoped(stored.definition)):
        raise StepFailed("connector_not_tenant_scoped")  # changed since the plan: never another tenant's
    connector = build(stored.definition, request_id, session_factory=SESSION_FACTORY)
    if task_token and connector.kind == "http":
        from rightsdesk.connectors import callbacks

        connector.callback_offer = callbacks.Offer(
            request_id=request_id,
            execution_id=execution_id,
            run=int(item.run),
            connector_id=connector_id,
            task_token=task_token,
            attempt=attempt,
        )
    opened = _unseal(item)
    identities = {**dict(opened.get("derived") or {}), **dict(opened.get("seeds") or {})}
    records: list[dict[str, Any]] = []
    if not connector.needs <= identities.keys():  # nothing of the subject's there: no identity to look for
        outcome = _skipped_outcome(connector, item.action)
    else:
        chosen = {kind: identities[kind] for kind in sorted(connector.needs)}
        try:
            if item.action == ERASE:
                outcome = base.erase_and_verify(connector, chosen)
            elif item.action == RECTIFY:
                outcome = base.rectify_and_verify(connector, chosen, dict(opened.get("changes") or {}))
            else:
                outcome, records = base.export_records(connector, chosen)
        except base.AwaitingCallback:
            if connector.callback_offer.still_open():  # else the product called back already: recorded
                _save_step(item, connector_id, WAITING_CALLBACK, attempt=attempt, outcome=None, first=first)
            raise StepAwaitingCallback(connector_id) from None
    if outcome.result in SETTLED:
        if item.action == EXPORT and outcome.result == base.DONE:
            from rightsdesk.connectors import export_store

            export_store.save(request_id, connector_id, connector.kind, records)
        _record(request_id, execution_id, outcome)
        _save_step(item, connector_id, DONE, attempt=attempt, outcome=outcome, first=first)
        return _summary(connector_id, outcome.to_dict())
    code = outcome.result if outcome.result != base.FAILED else (outcome.failure or {}).get("code", "failed")
    if outcome.result == base.FAILED:
        try:
            retry = _retry_or_fail(code, attempt, first)
        except StepFailed:
            _record(request_id, execution_id, outcome)
            _save_step(item, connector_id, FAILED, attempt=attempt, outcome=outcome, first=first)
            raise
        _save_step(item, connector_id, RETRYING, attempt=attempt, outcome=outcome, first=first)
        raise retry
    # parked: ambiguous or over the ceiling; nothing was erased, and retrying changes nothing
    _save_step(item, connector_id, FAILED, attempt=attempt, outcome=outcome, first=first)
    raise StepFailed(code)


# ------------------------------------------------------------------ an HTTP product's callback


def _run_item(request_id: str, run: int) -> ExecutionItem:
    try:
        return ExecutionItem.get(RequestItem.key(request_id), ExecutionItem.sort_key(run), consistent_read=True)
    except ExecutionItem.DoesNotExist:
        raise NotFound("no such run", code="callback_not_found") from None


def record_callback_step(
    request_id: str, run: int, connector_id: str, outcome: base.Outcome, records: list[dict[str, Any]], *, attempt: int
) -> tuple[dict[str, Any], str | None]:
    """The outcome a product reported through its callback, recorded as a synchronous step's (the
    receipt entry once per run and connector, the step done or failed, an export's section while
    its run still runs). Answers the step's summary and, if it failed, its failure word."""
    item = _run_item(request_id, run)
    step = _step(request_id, connector_id)
    first = step.first_attempt_at if step is not None and step.first_attempt_at else clock.now()
    if outcome.result in SETTLED:
        if item.action == EXPORT and outcome.result == base.DONE and item.status == RUNNING:
            from rightsdesk.connectors import export_store

            export_store.save(request_id, connector_id, outcome.kind, records)
        _record(request_id, item.execution_id, outcome)
        _save_step(item, connector_id, DONE, attempt=attempt, outcome=outcome, first=first)
        return _summary(connector_id, outcome.to_dict()), None
    _record(request_id, item.execution_id, outcome)
    _save_step(item, connector_id, FAILED, attempt=attempt, outcome=outcome, first=first)
    return _summary(connector_id, outcome.to_dict()), (outcome.failure or {}).get("code", "failed")


def callback_timed_out(request_id: str, run: int, connector_id: str, outcome: base.Outcome, attempt: int) -> bool:
    """The callback of this step's attempt never came: the step fails (recorded in the receipt).
    False if the step is no longer waiting for that callback (a later attempt, or done)."""
    step = _step(request_id, connector_id)
    if step is None or step.state != WAITING_CALLBACK or int(step.run) != run or int(step.attempts or 0) != attempt:
        return False
    item = _run_item(request_id, run)
    _record(request_id, item.execution_id, outcome)
    _save_step(item, connector_id, FAILED, attempt=attempt, outcome=outcome, first=step.first_attempt_at or clock.now())
    return True


def answer_task(task_token: str, output: dict[str, Any] | None, failure: str | None) -> None:
    """Answer a connector task (SendTaskSuccess with the output, or SendTaskFailure with the
    failure word); a task already gone (the run stopped, timed out or was answered) is no error."""
    if not task_token:
        return
    try:
        if failure is not None:
            _sfn().send_task_failure(taskToken=task_token, error=TASK_ERROR_PREFIX + failure, cause=failure)
        else:
            _sfn().send_task_success(taskToken=task_token, output=json.dumps(output or {}, separators=(",", ":")))
    except Exception as error:
        code = ((getattr(error, "response", None) or {}).get("Error") or {}).get("Code")
        if code not in TASK_GONE:
            raise
        log.info("task gone", extra={"code": code})


def finish_step(request_id: str, execution_id: str) -> ExecutionView:
    """Every planned step done: seal the receipt and close the run (the sealed identities go)."""
    from rightsdesk.connectors import receipts

    item = _running(request_id, execution_id)
    steps = {s.connector_id: s for s in _steps(request_id)}
    undone = sorted(c for stage in _stages(item) for c in stage if getattr(steps.get(c), "state", None) != DONE)
    if undone:
        raise StepFailed("steps_not_done")
    receipts.seal(request_id, signer=_signer())
    _move(
        item,
        SUCCEEDED,
        actor="rightsdesk",
        actions=[ExecutionItem.sealed_identities.remove()],
        expect=frozenset({RUNNING}),
    )
    return _view(item)


def park(request_id: str, execution_id: str, reason: str) -> ExecutionView | None:
    """The run waits for the operator: its request stays in the operator queue. `reason` is the
    failed task's error word. None if the run is no longer running (stopped meanwhile)."""
    item = _latest(request_id)
    if item is None or item.execution_id != execution_id:
        return None
    if item.status == RUNNING:
        _move(item, PARKED, actor="rightsdesk", reason=_word(reason), expect=frozenset({RUNNING}))
    return _view(item)


def _word(text: str) -> str:
    """A failure word as stored: letters, digits and _ . - only, short (it came through the state machine)."""
    cleaned = "".join(ch if ch.isalnum() or ch in "_.-" else "_" for ch in (text or "failed"))
    return cleaned[:64] or "failed"


def is_controller_run(view_or_item: Any) -> bool:
    return getattr(view_or_item, "initiated_by", None) == "controller"


def latest_item(request_id: str) -> ExecutionItem | None:
    """The latest run's item (rightsdesk.outbound.connector_runs reads who started it)."""
    return _latest(request_id)


def _tenant_scoped(definition: Any) -> bool:
    return bool(getattr(definition, "tenant_scoped", False))
