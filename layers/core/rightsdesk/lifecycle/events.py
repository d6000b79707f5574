"""The events the product sends about its accounts, on the stack's event bus (AccountEventBus):
their detail-types and detail (schema: account_events.schema.json beside this module;
docs/operations.md "Lifecycles").

    source       rightsdesk.product
    detail-type  "Account Activity" | "Account Cancelled"
    detail       {"account_id", "account_class"?, "email"?, "locale"?, "identities"?, "at"?}

`account_id` is the product's id of the account (an id: no address). `email` and `identities`
(the ids the connectors know the account by: user_id, account_id, ...) may come with every event
or only once; the last ones given are kept, until the account's erasure. `at` (ISO 8601) is when
it happened, if not now; a time in the future counts as now.

An event that can never be recorded (a malformed detail) is dropped and counted, not retried: a
retry would fail the same way. The product's mistakes show in the metric AccountEventsRejected.
"""

from __future__ import annotations

from datetime import datetime

from rightsdesk.kernel import clock
from rightsdesk.kernel.errors import InvalidInput
from rightsdesk.lifecycle import accounts

ACTIVITY = "Account Activity"
CANCELLED = "Account Cancelled"
DETAIL_TYPES = (ACTIVITY, CANCELLED)
SOURCE = "rightsdesk.product"  # the rule on the stack's own bus matches it (template.yaml)
FIELDS = frozenset({"account_id", "account_class", "email", "locale", "identities", "at"})

RECORDED = "recorded"
REPEATED = "repeated"  # the day's activity was recorded already; the account cancelled already
REJECTED = "rejected"


def is_account_event(event: dict) -> bool:
    return isinstance(event, dict) and event.get("detail-type") in DETAIL_TYPES


def _when(value: object) -> datetime:
    now = clock.now()
    if value is None:
        return now
    if not isinstance(value, str):
        raise InvalidInput("at is an ISO 8601 time", fields={"at": "invalid"})
    try:
        at = clock.parse_iso(value)
    except ValueError:
        raise InvalidInput("at is an ISO 8601 time", fields={"at": "invalid"}) from None
    return min(at, now)


def handle(event: dict) -> str:
    """Record one account event; returns RECORDED, REPEATED or REJECTED (never raises for a bad
    detail). Storage errors raise, so EventBridge and Lambda retry the event."""
    detail = event.get("detail")
    try:
        if not isinstance(detail, dict) or set(detail) - FIELDS:
            raise InvalidInput("an account event's detail has only " + ", ".join(sorted(FIELDS)))
        record = accounts.record_activity if event.get("detail-type") == ACTIVITY else accounts.record_cancellation
        wrote = record(
            detail.get("account_id"),  # type: ignore[arg-type]
            account_class=detail.get("account_class"),
            email=detail.get("email"),
            locale=detail.get("locale"),
            identities=detail.get("identities"),
            at=_when(detail.get("at")),
        )
    except InvalidInput:
        return REJECTED
    return RECORDED if wrote else REPEATED
