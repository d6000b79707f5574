"""Audit events: who did what to which record, when. Ids, statuses and causes only."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from rightsdesk.kernel import clock, retention
from rightsdesk.store.items.audit import AuditEvent, OperatorRecord

if TYPE_CHECKING:
    from rightsdesk.platform.operator_identity import Actor


def event(
    record_pk: str,
    *,
    action: str,
    actor: Actor,
    at: datetime | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    cause: str | None = None,
) -> AuditEvent:
    """A new audit event for the record `record_pk`, kept as long as the request skeleton. An
    operator as `actor` is written as actor "operator" plus who it was (rightsdesk.platform.operator_identity)."""
    if isinstance(actor, str):  # a machine's name: what every function acts as; nothing more to record
        name, operator = actor, None
    else:  # an operator's identity, which only the CLI has: the functions do not load operator_identity
        from rightsdesk.platform.operator_identity import actor_name, operator_of

        name, operator = actor_name(actor), operator_of(actor)
    at = at or clock.now()
    # microseconds keep events of the same second in the order they happened
    sort_key = f"{AuditEvent.SK_PREFIX}{at.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{secrets.token_hex(4)}"
    return AuditEvent(
        record_pk,
        sort_key,
        action=action,
        actor=name,
        operator=OperatorRecord(**operator.as_record()) if operator else None,
        at=at,
        from_status=from_status,
        to_status=to_status,
        cause=cause,
        expires_at=retention.expires_at(retention.Rule.SKELETON, at),
    )


def trail(record_pk: str) -> list[AuditEvent]:
    """All audit events of a record, oldest first."""
    return list(AuditEvent.query(record_pk, AuditEvent.sk.startswith(AuditEvent.SK_PREFIX)))


def latest(record_pk: str, limit: int) -> list[AuditEvent]:
    """A record's latest audit events, newest first: at most `limit` read, the expired ones left out
    (the table's TTL deletes them late, and the local emulator never)."""
    events = AuditEvent.query(
        record_pk, AuditEvent.sk.startswith(AuditEvent.SK_PREFIX), scan_index_forward=False, limit=limit
    )
    return [event for event in events if retention.is_live(event)]


def operator_view(event: AuditEvent) -> dict[str, str] | None:
    """Who the operator was, for readers (JSON); None for a machine's event or one from before
    operators were named."""
    if event.operator is None:
        return None
    return event.operator.as_dict()
