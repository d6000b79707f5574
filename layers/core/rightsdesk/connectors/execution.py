"""Carrying a request out through its connectors, one AWS Step Functions execution per run
(docs/connectors.md, "Orchestration"): what other packages call.

A run is started (`start`), or scheduled after the erasure grace period (`schedule`, begun by
`begin_due`), and then driven by the state machine (statemachines/connector_execution.asl.json),
whose every task is a message on the ConnectorTaskQueue answered by the ConnectorWorkerFunction
with SendTaskSuccess or SendTaskFailure; the worker's steps are rightsdesk.connectors.steps.
`stop` stops the state machine and marks the run stopped; the steps re-check the run, so a run
stops between connectors. A resume is a new run (`start` again on a stopped, failed or parked
request): it skips the steps recorded done. `dry_run` shows what each connector would touch and
writes nothing. `forget_identities` is the closing of a request: its run keeps no identities.

A rectification the operator approved runs the same way (action `rectify`, `start(changes=...)`):
the corrected values are sealed with the identities (`changes`), written by each connector that
declares the field rectifiable, and read back (rightsdesk.connectors.base.rectify_and_verify).

The run's record (statuses, view, reads, moves with audit events, sealing of identities) is
rightsdesk.connectors.runs. The names callers use (statuses, the view, the steps and their
exceptions) are importable from here too; tests replace `runs.SESSION_FACTORY` and
`runs.step_functions` where they are read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from rightsdesk.connectors import runs
from rightsdesk.connectors.runs import (
    ACTIONS,
    ACTIVE,
    CONTROLLER_PREFIX,
    DONE,
    ERASE,
    EXPORT,
    FAILED,
    PARKED,
    PENDING,
    RECTIFY,
    RETRYING,
    RUNNING,
    SEAL_PURPOSE,
    STATUSES,
    STOPPED,
    SUCCEEDED,
    WAITING,
    WAITING_CALLBACK,
    ExecutionView,
    close_for_request,
    initiator_of,
    is_controller_run,
    latest_item,
    move,
    new_run,
    run_connectors,
    unseal,
    view_of,
)
from rightsdesk.connectors.steps import (
    MAX_ATTEMPTS,
    RETRY,
    SETTLED,
    TASK_ERROR_PREFIX,
    TASK_GONE,
    RetryStep,
    StepAwaitingCallback,
    StepFailed,
    StepSkipped,
    answer_task,
    callback_timed_out,
    connector_step,
    finish_step,
    park,
    plan_step,
    receipt_signer,
    record_callback_step,
)
from rightsdesk.kernel import clock
from rightsdesk.kernel.errors import Conflict, InvalidInput, NotFound
from rightsdesk.kernel.status import is_open
from rightsdesk.platform import config
from rightsdesk.store import queries
from rightsdesk.store.items.executions import DUE_INDEX_KEY, ExecutionItem
from rightsdesk.store.items.requests import RequestItem

if TYPE_CHECKING:
    from rightsdesk.platform.operator_identity import Actor

log = logging.getLogger(__name__)

# What other packages call: defined here, or with their one home in runs and steps.
__all__ = [
    "ACTIONS",
    "ACTIVE",
    "CONTROLLER_PREFIX",
    "DONE",
    "ERASE",
    "EXPORT",
    "ExecutionView",
    "FAILED",
    "MAX_ATTEMPTS",
    "PARKED",
    "PENDING",
    "RECTIFY",
    "RETRY",
    "RETRYING",
    "RUNNING",
    "RetryStep",
    "SEAL_PURPOSE",
    "SETTLED",
    "STATUSES",
    "STOPPED",
    "SUCCEEDED",
    "StepAwaitingCallback",
    "StepFailed",
    "StepSkipped",
    "TASK_ERROR_PREFIX",
    "TASK_GONE",
    "WAITING",
    "WAITING_CALLBACK",
    "answer_task",
    "begin_due",
    "callback_timed_out",
    "connector_step",
    "enabled_connectors_exist",
    "erase_kept_records_due",
    "finish_step",
    "forget_identities",
    "is_controller_run",
    "latest_item",
    "park",
    "plan_step",
    "record_callback_step",
    "schedule",
    "start",
    "stop",
    "view",
]


def view(request_id: str) -> ExecutionView | None:
    """The latest run of the request (None: never executed)."""
    item = latest_item(request_id)
    return view_of(item) if item is not None else None


def enabled_connectors_exist() -> bool:
    """Whether any stored connector runs for real: only then does a request go through a run."""
    from rightsdesk.connectors import registry

    return any(stored.enabled for stored in registry.list_connectors())


# ------------------------------------------------------------------ starting and stopping


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
    previous = latest_item(request_id)
    processor = initiator_of(actor)[0] == "controller" or (previous is not None and is_controller_run(previous))
    if dry_run:
        request = _request(request_id)
        return _dry_run(request, _seeds(request, identities, tenant_id, processor=processor), processor=processor)
    request = _checked_start(request_id, previous)
    if previous is not None and previous.status == WAITING:
        _begin(previous, actor=actor)
        return view_of(previous)
    carried: dict[str, str] = {}
    earlier_changes: dict[str, str] = {}
    if previous is not None and identities is None:
        sealed = unseal(previous)
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
    item = new_run(
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
    return view_of(item)


def schedule(
    request_id: str, *, not_before: datetime, actor: Actor, identities: Mapping[str, str] | None = None
) -> ExecutionView:
    """A run that waits until `not_before` (the erasure grace period), then starts by itself
    (`begin_due`); `stop` meanwhile, or the subject's cancellation, keeps it from starting.
    `identities` as for `start` (None: the request's verified email)."""
    previous = latest_item(request_id)
    if previous is not None and previous.status == WAITING:
        return view_of(previous)  # a retried carry-out schedules once
    request = _checked_start(request_id, previous)
    item = new_run(
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
    return view_of(item)


def _begin(item: ExecutionItem, *, actor: Actor) -> bool:
    started = move(
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
            move(
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
        answer = runs.step_functions().start_execution(
            stateMachineArn=arn, name=item.execution_id, input=json.dumps(payload)
        )
    except Exception as error:
        code = ((getattr(error, "response", None) or {}).get("Error") or {}).get("Code")
        if code != "ExecutionAlreadyExists":
            move(item, FAILED, actor="rightsdesk", reason="start_failed")
            raise
        return
    item.update(actions=[ExecutionItem.sfn_execution_arn.set(answer["executionArn"])])


def stop(request_id: str, *, actor: Actor) -> ExecutionView:
    """Stop the request's run: a waiting one never starts, a running one stops between connectors
    (the connector at work finishes its step; no other starts). Resume with `start`."""
    item = latest_item(request_id)
    if item is None:
        raise NotFound(f"request {request_id} has no execution", code="no_execution")
    if item.status not in ACTIVE:
        raise Conflict(f"the execution is {item.status}, not running or waiting", code="execution_not_active")
    if not move(
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
            runs.step_functions().stop_execution(
                executionArn=item.sfn_execution_arn, error="Stopped", cause="stopped_by_operator"
            )
        except Exception as error:  # noqa: BLE001 - the run is marked stopped: its steps do nothing more
            log.warning("stop_execution failed", extra={"request_id": request_id, "error_type": type(error).__name__})
    return view_of(item)


# ------------------------------------------------------------------ dry run


def _dry_run(request: RequestItem, seeds: Mapping[str, str], *, processor: bool = False) -> ExecutionView:
    from rightsdesk.connectors import identity_graph
    from rightsdesk.connectors.definitions import DefinitionError

    try:
        resolution = identity_graph.resolve(run_connectors(request.request_id, processor=processor), seeds)
    except DefinitionError as error:
        raise InvalidInput(error.message, fields=error.fields) from None
    rows = []
    for number, stage in enumerate(resolution.plan.stages, start=1):
        for connector_id in stage:
            outcome = resolution.outcomes.get(connector_id)
            counts = {
                "result": outcome.result if outcome else None,
                "found": outcome.found if outcome else 0,
                "erased": 0,
                "kept": 0,
                "failure": outcome.failure if outcome else None,
            }
            rows.append(runs.step_row(connector_id, number, state="planned", run=None, attempts=0, outcome=counts))
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


# ------------------------------------------------------------------ a closed request, kept records


def forget_identities(request_id: str) -> None:
    """The request was closed (the subject cancelled it, the operator rejected or answered it):
    its latest run stops if it waits, and keeps no identities. A running run is left to its next
    step, which finds the request closed and stops there (so the caller needs no Step Functions
    grant). Nothing if it never ran."""
    item = latest_item(request_id)
    if item is not None and item.status != RUNNING and (item.sealed_identities or item.status in ACTIVE):
        close_for_request(item)


def erase_kept_records_due() -> int:
    """Erase the records kept for a legal basis whose period has ended (rightsdesk.connectors.
    kept_erasure), each appended to its request's receipt; how many were erased."""
    from rightsdesk.connectors import kept_erasure

    report = kept_erasure.run_due(signer=receipt_signer(), session_factory=runs.SESSION_FACTORY)
    return report.erased
