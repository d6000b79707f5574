"""A controller asks rightsdesk, as its processor, to carry a request out in the platform's stores.

`POST /v1/controller/requests/{id}/execute` brings the subject's identities as the controller knows
them (rightsdesk purged the address an hour after delivery). The rules here, before the execution
starts (rightsdesk.connectors.execution, called by the route):

- only the controller's own request (another's, or one gone, is "not found", as everywhere in
  this API), of a type connectors carry out (erasure, access, portability), once delivered and
  while the controller works on it (forwarded, delivered, acknowledged, in_progress);
- identities of the kinds the enabled tenant-scoped connectors need (a kind no connector needs
  would be stored for nothing), one to MAX_IDENTITIES of them, each value 1 to MAX_VALUE (rightsdesk.routing.controller_forms)
  characters without control characters; `tenant_id` is never the controller's to give;
- the run is scoped to the controller's tenant (`tenant_of`): the operator sets a controller's
  `tenant_id` where the platform's stores name tenants otherwise; by default it is its controller
  id. Only tenant-scoped connectors act for a controller (`processor_connectors`): a connector
  without a tenant condition could reach every tenant's records;
- no dry run: a plan performs the connectors' finds at once, in the calling function, which would
  give the internet-facing controller API sts:AssumeRole on every connector role; only the worker
  holds that (docs/decisions.md). The operator plans with `rightsdesk requests execute --dry-run`.

`receipt` is the signed receipt chain of the controller's own request (rightsdesk.connectors.receipts).
Identities are personal data: nothing here logs, stores or returns them. The connectors' modules
are imported on first use: the controller API's other routes do not load them at cold start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rightsdesk.kernel.errors import Conflict, InvalidInput, NotFound
from rightsdesk.kernel.rights import RequestType
from rightsdesk.kernel.status import Status
from rightsdesk.routing import controller_requests
from rightsdesk.routing.controller_lookup import tenant_of
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.requests import RequestItem

if TYPE_CHECKING:
    from rightsdesk.routing.controller_forms import ExecuteInput

EXECUTABLE_TYPES = frozenset({RequestType.ERASURE.value, RequestType.ACCESS.value, RequestType.PORTABILITY.value})
# After delivery, while the controller works on it: the lifecycle's states between forwarding and closing.
EXECUTABLE_STATUSES = frozenset(
    {Status.FORWARDED.value, Status.DELIVERED.value, Status.ACKNOWLEDGED.value, Status.IN_PROGRESS.value}
)


def processor_connectors() -> list[Any]:
    """The enabled connectors that may act for a controller: the tenant-scoped ones."""
    from rightsdesk.connectors import registry

    return [
        stored.definition
        for stored in registry.list_connectors()
        if stored.enabled and stored.definition is not None and stored.definition.tenant_scoped
    ]


def identity_kinds(definitions: list[Any] | None = None) -> frozenset[str]:
    """The identity kinds a controller may give: what the processor connectors need, but the tenant."""
    from rightsdesk.connectors.definitions import TENANT_IDENTITY

    definitions = processor_connectors() if definitions is None else definitions
    return frozenset(kind for definition in definitions for kind in definition.needs) - {TENANT_IDENTITY}


def _own(controller: ControllerItem, request_id: str) -> RequestItem:
    return controller_requests._own(controller, request_id)  # one "not found" for not yours, not routed, gone


def check(controller: ControllerItem, request_id: str, body: ExecuteInput) -> RequestItem:
    """The request, if the controller may have it executed with these identities; else the error."""
    request = _own(controller, request_id)
    if request.request_type not in EXECUTABLE_TYPES:
        raise Conflict(
            f"a {request.request_type} request is not carried out by connectors; erasure, access and portability are",
            code="not_executable",
        )
    if request.status not in EXECUTABLE_STATUSES:
        raise Conflict(
            f"a request that is {request.status} cannot be executed; it can from delivery until it is closed",
            code="not_executable",
        )
    from rightsdesk.connectors.definitions import TENANT_IDENTITY

    definitions = processor_connectors()
    if not definitions:
        raise Conflict("no connector of the platform acts for controllers yet", code="no_tenant_connectors")
    known = identity_kinds(definitions)
    unknown = {
        f"identities.{kind}": "reserved" if kind == TENANT_IDENTITY else "unknown_kind"
        for kind in body.identities
        if kind not in known
    }
    if unknown:
        raise InvalidInput(
            "identities of kinds no connector needs: " + ", ".join(sorted(known)) + " are known", fields=unknown
        )
    return request


def execute(controller: ControllerItem, request_id: str, body: ExecuteInput, execution: Any) -> tuple[Any, bool]:
    """Start the controller's run (its identities, its tenant) through `execution`
    (rightsdesk.connectors.execution), or answer the run already under way or done: asking twice
    starts one run. A stopped, failed or parked run resumes. Returns (the run's view, started)."""
    check(controller, request_id, body)
    latest = execution.view(request_id)
    if latest is not None and (latest.status in execution.ACTIVE or latest.status == execution.SUCCEEDED):
        return latest, False
    view = execution.start(
        request_id,
        actor=controller_requests.actor(controller),
        identities=dict(body.identities),
        tenant_id=tenant_of(controller),
    )
    return view, True


def receipt(controller: ControllerItem, request_id: str) -> dict[str, Any]:
    """The signed receipt of the controller's own request; NotFound while it has none."""
    from rightsdesk.connectors import receipts

    _own(controller, request_id)
    chain = receipts.entries(request_id)
    if not chain:
        raise NotFound("no receipt for this request yet")
    return receipts.export(request_id, chain)
