"""The request lifecycle: which status may follow which, in exactly one table.

identity_unverified --verify--> verified --route--> forwarded --delivered--> delivered
   | (72h)                                           | (retries exhausted)     |
   v                                                 v                         v
 expired                                       delivery_failed   acknowledged -> completed | rejected
delivered --(its email bounced after SES accepted it)--> delivery_failed
verified --(operator's own data)--> in_progress -> completed | rejected
any open state --subject--> cancelled
"""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    IDENTITY_UNVERIFIED = "identity_unverified"
    VERIFIED = "verified"
    FORWARDED = "forwarded"
    DELIVERED = "delivered"
    DELIVERY_FAILED = "delivery_failed"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


S = Status

CLOSED: frozenset[Status] = frozenset({S.COMPLETED, S.REJECTED, S.EXPIRED, S.CANCELLED})
OPEN: frozenset[Status] = frozenset(set(Status) - CLOSED)

_FORWARD: dict[Status, frozenset[Status]] = {
    S.IDENTITY_UNVERIFIED: frozenset({S.VERIFIED, S.EXPIRED}),
    S.VERIFIED: frozenset({S.FORWARDED, S.IN_PROGRESS}),
    S.FORWARDED: frozenset({S.DELIVERED, S.DELIVERY_FAILED}),
    # A redrive after the controller fixed its endpoint forwards again.
    S.DELIVERY_FAILED: frozenset({S.FORWARDED, S.DELIVERED}),
    # An email delivery whose mail bounced after SES accepted it was not delivered after all.
    S.DELIVERED: frozenset({S.ACKNOWLEDGED, S.IN_PROGRESS, S.COMPLETED, S.REJECTED, S.DELIVERY_FAILED}),
    S.ACKNOWLEDGED: frozenset({S.IN_PROGRESS, S.COMPLETED, S.REJECTED}),
    S.IN_PROGRESS: frozenset({S.COMPLETED, S.REJECTED}),
}

TRANSITIONS: dict[Status, frozenset[Status]] = {
    status: _FORWARD.get(status, frozenset()) | (frozenset({S.CANCELLED}) if status in OPEN else frozenset())
    for status in Status
}


def reachable_from(start: Status) -> frozenset[Status]:
    """Every status a request in `start` can still reach, `start` itself not counted unless it recurs."""
    seen: set[Status] = set()
    todo = [start]
    while todo:
        for following in TRANSITIONS[todo.pop()]:
            if following not in seen:
                seen.add(following)
                todo.append(following)
    return frozenset(seen)


def in_order(statuses: frozenset[Status]) -> tuple[Status, ...]:
    """The statuses of a set in the lifecycle's order (as declared in Status): for listings,
    messages and schemas that must read the same on every run."""
    return tuple(status for status in Status if status in statuses)


def values(statuses: frozenset[Status]) -> tuple[str, ...]:
    return tuple(status.value for status in in_order(statuses))


# The named sets of statuses; every module takes them from here (tests/unit/test_status_sets.py).
# Open requests with a due date that the controller has (or is about to have): the deadline watch's.
WATCHED: frozenset[Status] = OPEN - {S.IDENTITY_UNVERIFIED}
# What a controller sees of its requests (listing, API, webhooks): from forwarding on.
VISIBLE_TO_CONTROLLER: frozenset[Status] = frozenset({S.FORWARDED}) | reachable_from(S.FORWARDED)
# What a controller (or the operator answering for a removed one) may report: acknowledging and
# what follows it, cancelling being the subject's.
CONTROLLER_ANSWERS: frozenset[Status] = (frozenset({S.ACKNOWLEDGED}) | reachable_from(S.ACKNOWLEDGED)) - {S.CANCELLED}
# A request's deadline is met by its answer: completing or rejecting it.
ANSWERED: frozenset[Status] = CONTROLLER_ANSWERS & CLOSED
# Closed without an answer: the subject withdrew (or never proved their address).
WITHDRAWN: frozenset[Status] = CLOSED - ANSWERED
# Routed but not (or no longer) delivered: waiting for its delivery or a redrive.
AWAITING_DELIVERY: frozenset[Status] = frozenset({S.FORWARDED, S.DELIVERY_FAILED})
# Before routing: the controller has not been sent anything yet.
BEFORE_ROUTING: frozenset[Status] = frozenset({S.IDENTITY_UNVERIFIED, S.VERIFIED})
# The address was never proven: no breach notice goes to such a request's subject.
UNPROVEN: frozenset[Status] = frozenset({S.IDENTITY_UNVERIFIED, S.EXPIRED})


def can_transition(current: Status | str, target: Status | str) -> bool:
    return Status(target) in TRANSITIONS[Status(current)]


def is_open(status: Status | str) -> bool:
    return Status(status) in OPEN
