"""Status changes: a conditional write on the current status plus an audit event, atomically."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.operand import Path, Value
from pynamodb.expressions.update import Action, RemoveAction, SetAction
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from rightsdesk.kernel import clock
from rightsdesk.kernel.errors import IllegalTransition
from rightsdesk.kernel.status import CLOSED, Status, can_transition
from rightsdesk.store import audit
from rightsdesk.store.items.requests import RequestItem
from rightsdesk.store.items.table import transaction

if TYPE_CHECKING:
    from rightsdesk.platform.operator_identity import Actor

# TransactionCanceledException reasons that a repeat of the same write may clear.
TRANSIENT_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
CONFLICT_ATTEMPTS = 3


def listing_key(status: str, created_at: datetime, request_id: str) -> str:
    """GSI1 sort key: a controller lists its requests by status, oldest first."""
    return f"{status}#{clock.isoformat(created_at)}#{request_id}"


def transition(
    request: RequestItem,
    target: Status,
    *,
    actor: Actor,
    cause: str | None = None,
    updates: Iterable[Action] = (),
    also_delete: Iterable[Model] = (),
    also_update: Iterable[tuple[Model, list[Action], Condition | None]] = (),
    also_write: Iterable[Callable[[TransactWrite], None]] = (),
    at: datetime | None = None,
) -> RequestItem:
    """Move `request` to `target` if the status machine allows it and nobody moved it first.

    `also_update` are (item, actions, condition) written in the same transaction, e.g. a counter
    that must move with the status or not at all; `also_write` add their own writes to it (a
    delivery attempt's log record).
    """
    current = Status(request.status)
    if not can_transition(current, target):
        raise IllegalTransition(f"a {current.value} request cannot become {target.value}")
    at = at or clock.now()
    actions = [
        RequestItem.status.set(target.value),
        RequestItem.updated_at.set(at),
        RequestItem.gsi1sk.set(listing_key(target.value, request.created_at, request.request_id)),
        *updates,
    ]
    if target in CLOSED:
        actions.append(RequestItem.closed_at.set(at))
    event = audit.event(
        request.pk,
        action="status_changed",
        actor=actor,
        at=at,
        from_status=current.value,
        to_status=target.value,
        cause=cause,
    )
    also_delete, also_update, also_write = (
        list(also_delete),
        list(also_update),
        list(also_write),
    )  # a retry writes them again
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            with transaction() as tx:
                tx.update(request, actions=actions, condition=RequestItem.status == current.value)
                tx.save(event, condition=type(event).sk.does_not_exist())
                for item in also_delete:
                    tx.delete(item)
                for item, item_actions, condition in also_update:
                    tx.update(item, actions=item_actions, condition=condition)
                for write in also_write:
                    write(tx)
            break
        except TransactWriteError as error:
            if condition_failed(error):
                raise IllegalTransition("the request changed meanwhile; reload it and try again") from error
            # A conflict with another transaction or a throttle says nothing about the status: the
            # same conditional write is safe to repeat, and a caller must not mistake it for a
            # status change (the dispatcher would drop a delivery it had just made).
            if attempt == CONFLICT_ATTEMPTS or not _transient(error):
                raise
            time.sleep(0.05 * attempt)
    # The write's condition held, so the item is what was read plus these actions: set them here
    # rather than read it back (a call per transition). An action whose result only the table
    # knows (an ADD, a path into a map) reads it back, consistently.
    if not apply_locally(request, actions):
        request.refresh(consistent_read=True)
    return request


def apply_locally(item: Model, actions: Iterable[Action]) -> bool:
    """Give `item` the values `actions` wrote, if each SETs a whole attribute to a value or
    REMOVEs one; False, and `item` untouched, for any other action."""
    by_name = {attribute.attr_name: name for name, attribute in type(item).get_attributes().items()}
    values: dict[str, object] = {}
    for action in actions:
        path = action.values[0]
        if not isinstance(path, Path) or len(path.path) != 1 or path.path[0] not in by_name:
            return False
        name = by_name[path.path[0]]
        attribute = type(item).get_attributes()[name]
        if isinstance(action, RemoveAction):
            values[name] = None
        elif isinstance(action, SetAction) and isinstance(action.values[1], Value):
            serialized = action.values[1].value
            values[name] = None if "NULL" in serialized else attribute.deserialize(attribute.get_value(serialized))
        else:
            return False
    for name, value in values.items():
        setattr(item, name, value)
    return True


def condition_failed(error: TransactWriteError) -> bool:
    """True if a condition of the transaction failed (not a conflict, a throttle or an outage)."""
    return any(
        reason is not None and reason.code == "ConditionalCheckFailed"
        for reason in (getattr(error, "cancellation_reasons", None) or ())
    )


def _transient(error: TransactWriteError) -> bool:
    reasons = {reason.code for reason in (getattr(error, "cancellation_reasons", None) or ()) if reason is not None}
    return bool(reasons) and reasons <= TRANSIENT_REASONS
