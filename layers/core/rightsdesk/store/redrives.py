"""The audit trail of dead-letter redrives: an operator sent a dead-letter queue's messages back to
the queue they came from (`rightsdesk dlq redrive`).

A redrive changes no item: its moves are SQS calls. Its audit event is filed on the dead-letter
queue's own partition (DLQ#<the queue's logical id>), one per redrive, never per message, and says
who, where to, how and how many: never a message's id or body (a body may hold an address,
rightsdesk_cli.dlq). `rightsdesk dlq history` reads it.
"""

from __future__ import annotations

import re

from rightsdesk.platform.operator_identity import Actor
from rightsdesk.store import audit
from rightsdesk.store.items.audit import AuditEvent

PARTITION_PREFIX = "DLQ#"
REDRIVEN = "dlq_redriven"
BY_HAND = "moved"  # received, sent back and deleted one by one; the count is what moved
MOVE_TASK = "move_task"  # SQS moves them; the count is what waited when the task started
MODES = (BY_HAND, MOVE_TASK)
# Queue names as SQS allows them: the event keeps names, never URLs or ARNs.
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def partition(queue: str) -> str:
    if not QUEUE_NAME.fullmatch(queue):
        raise ValueError("a dead-letter queue is named by its logical id")
    return f"{PARTITION_PREFIX}{queue}"


def record(queue: str, *, to: str, mode: str, messages: int, actor: Actor) -> AuditEvent:
    """The redrive's one audit event, written after its moves (they are SQS calls, which no
    DynamoDB transaction covers): it records what was done, so it follows it. A run cut short
    between its last move and this write moved messages that every consumer handles once
    (idempotent) and leaves no claim of a redrive that did not happen."""
    if mode not in MODES or messages < 0 or not QUEUE_NAME.fullmatch(to):
        raise ValueError("a redrive is recorded with its mode, its target queue's name and a count")
    event = audit.event(partition(queue), action=REDRIVEN, actor=actor, cause=f"{mode}:{to}:{messages}")
    event.save(condition=AuditEvent.sk.does_not_exist())
    return event


def history(queue: str, limit: int = 50) -> list[AuditEvent]:
    """The queue's redrives, newest first."""
    return audit.latest(partition(queue), limit)
