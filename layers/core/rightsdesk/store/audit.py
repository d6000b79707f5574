"""Audit events: who did what to which record, when. Ids, statuses and causes only."""

from __future__ import annotations

import secrets
from datetime import datetime

from rightsdesk.kernel import clock, retention
from rightsdesk.platform.operator_identity import Actor, actor_name, operator_of
from rightsdesk.store.items.audit import AuditEvent, OperatorRecord


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
    operator = operator_of(actor)
    at = at or clock.now()
    # microseconds keep events of the same second in the order they happened
    sort_key = f"{AuditEvent.SK_PREFIX}{at.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{secrets.token_hex(4)}"
    return AuditEvent(
        record_pk,
        sort_key,
        action=action,
        actor=actor_name(actor),
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


def operator_view(event: AuditEvent) -> dict[str, str] | None:
    """Who the operator was, for readers (JSON); None for a machine's event or one from before
    operators were named."""
    if event.operator is None:
        return None
    return event.operator.as_dict()
