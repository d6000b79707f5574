"""The connector worker's steps of a run (the ConnectorWorkerFunction calls them, one per message
on the ConnectorTaskQueue; docs/connectors.md, "Orchestration"), and the hooks of an HTTP
product's callback (rightsdesk.connectors.callbacks).

- `plan_step`: resolve the identities (rightsdesk.connectors.identity_graph) and answer the stages
  of connector ids (erasure: dependents first, so that a resumed run can still derive what the
  remaining connectors need; export: in graph order);
- `connector_step`: one connector's erasure and re-query (or export, or rectification). Idempotent:
  a step recorded done is never done again, in this run or a later one (a resume skips it);
- `finish_step`: seal the receipt and close the run (rightsdesk.outbound.connector_runs adds what
  the request's owner does then);
- `park`: the state machine's Catch: the run waits for the operator (an alarm fires).

A connector that fails is retried with backoff by the worker on the injectable clock (`RetryStep`
carries the delay; the queue brings the message back), until `MAX_ATTEMPTS` or the step timeout,
then it fails the task (`StepFailed`) and the state machine parks the run. Every step re-checks
the run first (`StepSkipped`: stopped, or a newer run), so a stopped run stops between connectors.
A step answers ids, counts and words only: never an identity.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import PutError, UpdateError

from rightsdesk.connectors import base, runs
from rightsdesk.connectors.runs import (
    DONE,
    ERASE,
    EXPORT,
    FAILED,
    PARKED,
    RECTIFY,
    RETRYING,
    RUNNING,
    SUCCEEDED,
    WAITING_CALLBACK,
    ExecutionView,
    close_for_request,
    is_controller_run,
    latest_item,
    move,
    planned_stages,
    run_connectors,
    seal,
    sealed_run,
    step_item,
    step_items,
    tenant_scoped,
    unseal,
    view_of,
)
from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import Conflict, NotFound
from rightsdesk.kernel.retry import RetrySchedule
from rightsdesk.kernel.status import is_open
from rightsdesk.platform import config
from rightsdesk.store.items.executions import ExecutionItem, ExecutionStepItem
from rightsdesk.store.items.requests import RequestItem

log = logging.getLogger(__name__)

# A failed task's error name carries the reason (`rightsdesk.access_denied`): the state machine's
# Catch hands it to the park step. Step Functions' answers when the task is gone: the run was
# stopped, timed out, or the step answered already.
TASK_ERROR_PREFIX = "rightsdesk."
TASK_GONE = frozenset({"TaskDoesNotExist", "TaskTimedOut", "InvalidToken", "ExecutionDoesNotExist"})

# A connector that fails comes back after these delays (the worker's message visibility), at most
# MAX_ATTEMPTS times in all and within the step timeout; then its request parks.
RETRY = RetrySchedule((30, 120, 600, 1800))
MAX_ATTEMPTS = 5
SETTLED = frozenset({base.DONE, base.NOTHING_FOUND, base.KEPT_FOR_LEGAL_BASIS})


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


# ------------------------------------------------------------------ the worker's steps


def _running(request_id: str, execution_id: str) -> ExecutionItem:
    item = latest_item(request_id)
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
        close_for_request(item)
        raise StepSkipped(item.execution_id)
    if item.action == ERASE and request.legal_hold is not None:
        raise StepFailed("legal_hold")


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
    sealed = unseal(item)
    seeds = dict(sealed.get("seeds") or {})
    try:
        connectors = run_connectors(request_id, processor=is_controller_run(item))
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
                    seal(request_id, sealed_run(seeds, derived, sealed.get("changes")))
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


def receipt_signer() -> Any:
    """The KMS signer of receipt entries (RECEIPT_SIGNING_KEY_ID)."""
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
    receipts.record(request_id, entry, signer=receipt_signer(), step_id=f"{execution_id}:{outcome.connector_id}")


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
    step = step_item(request_id, connector_id)
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
    if is_controller_run(item) and not (stored.enabled and tenant_scoped(stored.definition)):
        raise StepFailed("connector_not_tenant_scoped")  # changed since the plan: never another tenant's
    connector = build(stored.definition, request_id, session_factory=runs.SESSION_FACTORY)
    if task_token and connector.kind == "http":
        from rightsdesk.connectors import callback_offers

        connector.callback_offer = callback_offers.Offer(
            request_id=request_id,
            execution_id=execution_id,
            run=int(item.run),
            connector_id=connector_id,
            task_token=task_token,
            attempt=attempt,
        )
    opened = unseal(item)
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
    step = step_item(request_id, connector_id)
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
    step = step_item(request_id, connector_id)
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
            runs.step_functions().send_task_failure(
                taskToken=task_token, error=TASK_ERROR_PREFIX + failure, cause=failure
            )
        else:
            runs.step_functions().send_task_success(
                taskToken=task_token, output=json.dumps(output or {}, separators=(",", ":"))
            )
    except Exception as error:
        code = ((getattr(error, "response", None) or {}).get("Error") or {}).get("Code")
        if code not in TASK_GONE:
            raise
        log.info("task gone", extra={"code": code})


# ------------------------------------------------------------------ the end of a run


def finish_step(request_id: str, execution_id: str) -> ExecutionView:
    """Every planned step done: seal the receipt and close the run (the sealed identities go)."""
    from rightsdesk.connectors import receipts

    item = _running(request_id, execution_id)
    steps = {s.connector_id: s for s in step_items(request_id)}
    undone = sorted(c for stage in planned_stages(item) for c in stage if getattr(steps.get(c), "state", None) != DONE)
    if undone:
        raise StepFailed("steps_not_done")
    receipts.seal(request_id, signer=receipt_signer())
    move(
        item,
        SUCCEEDED,
        actor="rightsdesk",
        actions=[ExecutionItem.sealed_identities.remove()],
        expect=frozenset({RUNNING}),
    )
    return view_of(item)


def park(request_id: str, execution_id: str, reason: str) -> ExecutionView | None:
    """The run waits for the operator: its request stays in the operator queue. `reason` is the
    failed task's error word. None if the run is no longer running (stopped meanwhile)."""
    item = latest_item(request_id)
    if item is None or item.execution_id != execution_id:
        return None
    if item.status == RUNNING:
        move(item, PARKED, actor="rightsdesk", reason=_word(reason), expect=frozenset({RUNNING}))
    return view_of(item)


def _word(text: str) -> str:
    """A failure word as stored: letters, digits and _ . - only, short (it came through the state machine)."""
    cleaned = "".join(ch if ch.isalnum() or ch in "_.-" else "_" for ch in (text or "failed"))
    return cleaned[:64] or "failed"
