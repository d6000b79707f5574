"""`dsr.request.executed`: an execution a controller asked for (`POST /v1/controller/requests/{id}/execute`)
ended; the event carries its receipt's summary, in the shape rightsdesk.outbound.dispatch asks of a
controller event (its data, whether it went out before, where its outcome is recorded).

`enqueue` puts ids only on the DeliveryQueue (the request, the execution, the controller); the
dispatcher builds the data when it sends, from the request and its signed receipt chain
(rightsdesk.connectors.receipts) and the execution's view (rightsdesk.connectors.execution), so
retries, the delivery log and redelivery apply as to every event. No personal data: connector
ids, counts, results, the legal bases the operator declared, the receipt's head hash.

Only a webhook controller gets the event; email and pull controllers read the same receipt from
`GET /v1/controller/requests/{id}/receipt` (docs/controller-api.md).
"""

from __future__ import annotations

import logging
from typing import Any

from rightsdesk.connectors import receipts
from rightsdesk.kernel.errors import NotFound
from rightsdesk.platform import webhooks
from rightsdesk.routing.delivery import DeliveryMessage
from rightsdesk.store import outbox, queries
from rightsdesk.store.items.controllers import ControllerItem

log = logging.getLogger("rightsdesk.outbound.dispatch")

DELIVERED, DISABLED, FAILED = "delivered", "disabled", "failed"
RECEIPT_PATH = "/v1/controller/requests/{request_id}/receipt"


def enqueue(*, request_id: str, execution_id: str) -> None:
    """Queue the event for the request's controller (ids only); nothing if the request is gone
    (past its retention time: there is nobody left to tell about it)."""
    try:
        request = queries.load_request(request_id)
    except NotFound:
        log.info("executed event not queued: request gone", extra={"request_id": request_id})
        return
    outbox.enqueue_controller_event(
        event=webhooks.EVENT_EXECUTED,
        controller_id=request.controller_id,
        request_id=request_id,
        execution_id=execution_id,
    )


def _execution_view(request_id: str, execution_id: str) -> dict[str, Any] | None:
    """The execution as the orchestration shows it (no identities), if it is this one."""
    from rightsdesk.connectors import execution  # read when an executed event is built only

    view = execution.view(request_id)
    if view is None:
        return None
    shown = view.to_dict()
    return shown if shown.get("execution_id") == execution_id else None


def _result(results: dict[str, int]) -> str:
    """One word for the whole: failed, parked, kept_for_legal_basis (all found was kept), done, nothing_found."""
    if results.get("failed"):
        return "failed"
    if any(name.startswith("parked") for name in results):
        return "parked"
    if results.get("done"):
        return "done"
    if results.get("kept_for_legal_basis"):
        return "kept_for_legal_basis"
    return "nothing_found"


def _connector(body: dict[str, Any]) -> dict[str, Any]:
    exceptions = body.get("legal_exceptions") or ([body["legal_exception"]] if body.get("legal_exception") else [])
    return {
        "connector_id": body["connector"]["id"],
        "kind": body["connector"]["kind"],
        "action": body["action"],
        "result": body["result"],
        "found": body["counts"]["found"],
        "erased": body["counts"]["erased"],
        "kept": body["counts"]["kept"],
        "remaining": body["remaining"],
        "legal_exceptions": [
            {"basis": e["basis"], "keep_until": e.get("keep_until"), "period_days": e.get("period_days")}
            for e in exceptions
        ],
    }


def summary(request_id: str, execution_id: str) -> dict[str, Any]:
    """The event's data without the controller: the receipt's summary and the execution's state."""
    chain = receipts.entries(request_id)
    bodies = [entry.body for entry in chain]
    totals = receipts.summary(bodies)
    latest: dict[str, dict[str, Any]] = {}
    for body in bodies:
        if body.get("entry") == "connector":
            latest[body["connector"]["id"]] = body
    execution = _execution_view(request_id, execution_id) or {}
    head = chain[-1] if chain else None
    return {
        "request_id": request_id,
        "execution_id": execution_id,
        "run": execution.get("run"),
        "status": execution.get("status"),
        "dry_run": execution.get("dry_run"),
        "finished_at": execution.get("finished_at") or (head.body.get("recorded_at") if head else None),
        "result": _result(totals["results"]),
        "summary": totals,
        "connectors": [_connector(body) for body in latest.values()],
        "receipt": {
            "url": RECEIPT_PATH.format(request_id=request_id),
            "entries": len(chain),
            "head": head.hash if head else None,
            "sealed": bool(head and head.is_seal),
        },
    }


# ------------------------------------------------------------------ the dispatcher's side


def delivered_before(message: DeliveryMessage) -> bool:
    from rightsdesk.store.items.deliveries import DeliveryAttemptItem, DeliveryItem

    try:
        delivery = DeliveryItem.get(
            DeliveryAttemptItem.key(str(message.controller_id)),
            DeliveryItem.sort_key(webhooks.webhook_id(message.delivery_id)),
            consistent_read=True,
        )
    except DeliveryItem.DoesNotExist:
        return False
    return delivery.last_outcome == DELIVERED


def data(message: DeliveryMessage) -> dict:
    """The event's data. NotFound for a request that is gone or another controller's."""
    request = queries.load_request(message.request_id)
    if request.controller_id != message.controller_id:
        raise NotFound("no such request")
    return {"controller_id": request.controller_id, **summary(message.request_id, str(message.execution_id))}


def record(message: DeliveryMessage, controller: ControllerItem, outcome: str, cause: str) -> None:
    # The delivery log holds the attempt; this names the outcome in the function's log (ids only).
    log.info(
        "controller event",
        extra={
            "controller_id": controller.controller_id,
            "event_type": message.event,
            "outcome": outcome,
            "cause": cause,
            "request_id": message.request_id,
            "execution_id": message.execution_id,
        },
    )
