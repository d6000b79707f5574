"""Controller routes for executions: rightsdesk, as the controller's processor, carries a request out
in the platform's stores (tenant-scoped connectors), and shows the signed receipt.

Included by app.py with `app.include_router(execution_routes.router)`; app.py's error handlers
apply. The rules (whose request, which types and statuses, which identity kinds, the tenant) live
in rightsdesk.routing.controller_execution; the execution itself in rightsdesk.connectors.execution,
reached through `_execution()` only (imported on first use: it is not needed by any other route).

Idempotent per request run: while an execution of the request is waiting or running (or after one
succeeded), asking again answers that execution, 202, and starts nothing; a stopped, failed or
parked one is resumed by a new run. The identities in the body are personal data: they go to the
execution (which keeps them sealed until it ends) and nowhere else: not in a log, a metric or the
answer.
"""

from __future__ import annotations

from typing import Annotated, Any

import calling  # this function's own module: who calls, the answer's shape
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit

from rightsdesk import routing
from rightsdesk.platform import http
from rightsdesk.routing import controller_execution as rules

logger = Logger(child=True)
metrics = Metrics()
router = Router()


def _execution() -> Any:
    """rightsdesk.connectors.execution, on first use (tests replace this function)."""
    from rightsdesk.connectors import execution

    return execution


_TIME = {"type": ["string", "null"], "format": "date-time"}
STEP = http.object_schema(
    {
        "connector_id": {"type": "string"},
        "stage": {"type": "integer", "description": "The identity graph's stage the connector runs in"},
        "state": {"type": "string"},
        "result": {
            "type": ["string", "null"],
            "description": "done, nothing_found, failed, kept_for_legal_basis, parked_ambiguous, parked_too_many",
        },
        "found": {"type": "integer"},
        "erased": {"type": "integer"},
        "kept": {"type": "integer", "description": "Kept for a legal basis (Art. 17(3)); the receipt names it"},
        "remaining": {"type": ["integer", "null"], "description": "The re-query after the erasure: 0 is verified"},
        "run": {"type": ["integer", "null"], "description": "The run that did (or last tried) this step"},
        "attempts": {"type": "integer", "description": "Tries of this step so far (retried with backoff)"},
        "failure": {"type": ["string", "null"], "description": "The last failure's code, e.g. access_denied"},
        "rectified": {"type": ["integer", "null"], "description": "Records corrected (a rectification run)"},
    }
)
EXECUTION = http.object_schema(
    {
        "execution_id": {"type": "string"},
        "request_id": {"type": "string"},
        "run": {"type": "integer", "description": "1, 2, ...: a resume is a new run"},
        "status": {"enum": ["waiting", "running", "stopped", "failed", "parked", "succeeded"]},
        "dry_run": {
            "type": "boolean",
            "description": "Always false: a controller's execution is never a plan (the operator's CLI plans)",
        },
        "not_before": _TIME,
        "started_at": _TIME,
        "finished_at": _TIME,
        "steps": {"type": "array", "items": STEP},
        "reason": {
            "type": ["string", "null"],
            "description": "Why it stopped or parked (a word: stopped_by_operator, request_closed, legal_hold, ...)",
        },
        "action": {"enum": ["erase", "export", None], "description": "erase (erasure) or export (access, portability)"},
    }
)
EXECUTION["description"] = "The execution, without the identities. Its receipt follows as `dsr.request.executed`."
RECEIPT = {
    "type": "object",
    "description": "The signed, hash-chained receipt (docs/connectors.md, Receipts): verify it offline with "
    "the public key of the stack's receipt signing key",
    "properties": {
        "format": {"type": "string"},
        "request_id": {"type": "string"},
        "canonical_form": {
            "type": "string",
            "description": "How an entry's body is serialized to be hashed and signed",
        },
        "signing": {
            "type": ["object", "null"],
            "description": "The signing key and algorithm (its public half verifies every entry)",
        },
        "head": {"type": ["object", "null"]},
        "summary": {"type": "object"},
        "entries": {"type": "array", "items": {"type": "object"}},
        "residual_copies": {
            "type": "object",
            "description": "What the erasure cannot reach at once (point-in-time recovery, backups): `code`, `text`",
        },
    },
}
CODES = {
    404: "Codes: `not_found` (no such request, another controller's, not routed yet, or gone)",
    409: "Codes: `not_executable` (its type or status), `no_tenant_connectors`, `execution_running`, "
    "`execution_conflict` (another run started meanwhile: ask again), `conflict`",
    422: "Codes: `invalid_input` (`fields`: `identities`, `identities.<kind>: unknown_kind | reserved`, "
    "`<field>: unknown_field`)",
}


@router.post(
    "/v1/controller/requests/<request_id>/execute",
    summary="Have rightsdesk carry the request out in the platform's stores, scoped to your tenant "
    "(erasure, access, portability); the receipt follows as `dsr.request.executed`",
    responses=http.responses(
        202,
        "The execution (started now, or the one already under way or done)",
        EXECUTION,
        *http.ANY_AUTHORIZED_ROUTE,
        *http.BODY_ERRORS,
        404,
        409,
        codes=CODES,
    ),
)
def execute(request_id: str, body: Annotated[routing.controller_forms.ExecuteInput, Body()]):
    controller = calling.caller(router.current_event, logger)
    view, started = rules.execute(controller, request_id, body, _execution())
    answer = view.to_dict()
    metrics.add_metric(name="ControllerExecutionStarted", unit=MetricUnit.Count, value=1 if started else 0)
    logger.info(
        "execution asked",
        extra={
            "request_id": request_id,
            "execution_id": answer.get("execution_id"),
            "started": started,
            "identity_kinds": sorted(body.identities),
        },
    )
    return calling.json_response(202, answer)


@router.get(
    "/v1/controller/requests/<request_id>/receipt",
    summary="The signed erasure receipt of your request (every connector's outcome, hash-chained)",
    responses=http.responses(200, "The receipt", RECEIPT, *http.ANY_AUTHORIZED_ROUTE, 404, codes=CODES),
)
def get_receipt(request_id: str):
    controller = calling.caller(router.current_event, logger)
    return calling.json_response(200, rules.receipt(controller, request_id))
