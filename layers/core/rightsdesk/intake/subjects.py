"""Flags a verified request carries for its controller: `excessive` and `guardian`.

GDPR Art. 12(5) and the policies we automate: one request per subject per calendar year is free;
later ones may be charged or refused as excessive by the controller, so we flag them, never refuse
them. Only the request types rightsdesk.kernel.rights.COUNTS_TOWARDS_FREE_REQUEST names count, and only
they are flagged: a consent withdrawal, an objection or a complaint is always free. The count is
kept per controller, subject (the keyed hash of the address, so it works
without the address itself) and UTC year in one small counter item. It is written in the verify
transaction on the condition that it still holds the value read: two verifications racing
cannot both count as the free one. Finding it is one key (read with the verification's other
counters in one call, counter_key); nothing scans.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from rightsdesk.kernel import retention
from rightsdesk.kernel.rights import Relationship, counts_towards_free_request
from rightsdesk.store.items.requests import RequestItem, SubjectCounterItem

FREE_PER_YEAR = 1
EXCESSIVE = "excessive"
GUARDIAN = "guardian"


def _year(at: datetime) -> int:
    return at.astimezone(timezone.utc).year


def counter_key(request: RequestItem, at: datetime) -> tuple[type[SubjectCounterItem], str, str] | None:
    """Where the subject's counter for the year of `at` is; None when the request has no subject
    hash or is of a type that never counts (it is then neither counted nor flagged)."""
    if not request.subject_hash or not counts_towards_free_request(request.request_type):
        return None
    key = SubjectCounterItem.key(request.controller_id, request.subject_hash, _year(at))
    return SubjectCounterItem, key, SubjectCounterItem.SK


def counter_as_read(request: RequestItem, at: datetime, found: SubjectCounterItem | None) -> SubjectCounterItem | None:
    """The counter `counter_key` names, from what a read found there (None: nothing yet)."""
    where = counter_key(request, at)
    if where is None:
        return None
    return found if found is not None else SubjectCounterItem(where[1], where[2])


def counter_for(request: RequestItem, at: datetime) -> SubjectCounterItem | None:
    """The subject's counter for the year of `at`, as stored now (counter_key's None otherwise)."""
    where = counter_key(request, at)
    if where is None:
        return None
    try:
        found = SubjectCounterItem.get(where[1], where[2], consistent_read=True)
    except SubjectCounterItem.DoesNotExist:
        found = None
    return counter_as_read(request, at, found)


def seen(counter: SubjectCounterItem | None) -> int:
    return int(counter.verified or 0) if counter is not None else 0


def flags_for(request: RequestItem, verified_before: int) -> list[str]:
    flags = set(request.flags or [])
    if verified_before >= FREE_PER_YEAR and counts_towards_free_request(request.request_type):
        flags.add(EXCESSIVE)
    if request.relationship == Relationship.GUARDIAN.value:
        flags.add(GUARDIAN)
    return sorted(flags)


def count_one_more(counter: SubjectCounterItem, at: datetime) -> tuple[SubjectCounterItem, list[Action], Condition]:
    """The counter's update for the verify transaction: +1, if nobody counted in between."""
    before = seen(counter)
    condition = SubjectCounterItem.verified.does_not_exist() if before == 0 else SubjectCounterItem.verified == before
    # Worth nothing once its year is over: the key names the year, so no later count reads it.
    next_year = datetime(_year(at) + 1, 1, 1, tzinfo=timezone.utc)
    expires = retention.expires_at(retention.Rule.SUBJECT_YEAR_COUNTER, next_year)
    actions = [SubjectCounterItem.verified.add(1), SubjectCounterItem.expires_at.set(expires)]
    return counter, actions, condition
