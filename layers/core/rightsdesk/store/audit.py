"""Audit events: who did what to which record, when. Ids, statuses and causes only."""

from __future__ import annotations

import secrets
from datetime import datetime

from rightsdesk.kernel import clock, retention
from rightsdesk.store.items.audit import AuditEvent


def event(
    record_pk: str,
    *,
    action: str,
    actor: str,
    at: datetime | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    cause: str | None = None,
) -> AuditEvent:
    """A new audit event for the record `record_pk`, kept as long as the request skeleton."""
    at = at or clock.now()
    # microseconds keep events of the same second in the order they happened
    sort_key = f"{AuditEvent.SK_PREFIX}{at.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{secrets.token_hex(4)}"
    return AuditEvent(
        record_pk,
        sort_key,
        action=action,
        actor=actor,
        at=at,
        from_status=from_status,
        to_status=to_status,
        cause=cause,
        expires_at=retention.expires_at(retention.Rule.SKELETON, at),
    )


def trail(record_pk: str) -> list[AuditEvent]:
    """All audit events of a record, oldest first."""
    return list(AuditEvent.query(record_pk, AuditEvent.sk.startswith(AuditEvent.SK_PREFIX)))
