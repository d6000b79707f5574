"""The operator answers the open requests of a removed controller (`rightsdesk requests answer`).

A removed controller has no API key and receives nothing more, but its subjects' requests stay
due. The operator takes each one over: a request that never reached the controller (verified,
forwarded, delivery_failed) counts as delivered to the operator, which schedules the purge of the
subject's fields as any delivery does; then the answer is recorded like a controller's status
report (the same transitions, the subject told by mail while the address is still held).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import Conflict, InvalidInput
from rightsdesk.kernel.status import AWAITING_DELIVERY, CONTROLLER_ANSWERS, Status, is_open, values
from rightsdesk.routing import controller_lookup, controller_requests, delivery
from rightsdesk.store import queries
from rightsdesk.store.items.requests import RequestItem
from rightsdesk.store.lifecycle import transition

if TYPE_CHECKING:
    from rightsdesk.platform.operator_identity import Actor

ACTOR = "operator"
ANSWERS = values(CONTROLLER_ANSWERS)
CAUSE = "controller_removed"


def answer(request_id: str, status: str, *, reason: str | None = None, actor: Actor = ACTOR) -> RequestItem:
    if status not in ANSWERS:
        raise InvalidInput(f"status must be one of {', '.join(ANSWERS)}", fields={"status": "invalid_choice"})
    if status == "rejected" and not (reason or "").strip():
        raise InvalidInput("say why the request is rejected", fields={"reason": "required"})
    request = queries.load_request(request_id)
    controller = controller_lookup.require_controller(request.controller_id)
    if controller_lookup.state_of(controller) != controller_lookup.REMOVED:
        raise Conflict(
            f"controller {controller.controller_id} is {controller_lookup.state_of(controller)}: it answers its own requests",
            code="controller_not_removed",
        )
    if not is_open(request.status) or request.status == Status.IDENTITY_UNVERIFIED.value:
        raise Conflict(f"the request is {request.status}: there is nothing to answer", code="not_answerable")
    if request.status == status:
        raise Conflict(f"the request is already {status}", code="illegal_transition")
    now = clock.now()
    if request.status == Status.VERIFIED.value:
        # Never routed: the operator is where it arrives, and its personal fields get a delivery's clock.
        request = transition(
            request,
            Status.IN_PROGRESS,
            actor=actor,
            cause=CAUSE,
            at=now,
            updates=[
                RequestItem.delivered_at.set(now),
                *retention.schedule_actions(request, retention.Rule.DELIVERED_SUBJECT_DATA, now),
            ],
        )
    elif request.status in AWAITING_DELIVERY:
        request = delivery.mark_delivered(request, controller, via="operator", actor=actor, at=now)
    # One mail path with the controller's reports (noqa: SLF001): the reason waits on the request
    # for the notifier, written with the answer itself.
    mail_id = controller_requests._subject_mail_id(request_id, status, None, now)  # noqa: SLF001
    note = controller_requests._note_actions(request, reason, mail_id)  # noqa: SLF001
    if request.status != status:
        request = transition(request, Status(status), actor=actor, cause=CAUSE, at=now, updates=note)
    elif note:
        request.update(actions=note)
    controller_requests._tell_subject(request, reason, mail_id, extended=False)  # noqa: SLF001
    return request
