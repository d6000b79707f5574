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


def can_transition(current: Status | str, target: Status | str) -> bool:
    return Status(target) in TRANSITIONS[Status(current)]


def is_open(status: Status | str) -> bool:
    return Status(status) in OPEN
