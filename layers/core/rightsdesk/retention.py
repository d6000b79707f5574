"""How long each kind of data is kept: the one table of rules (DESIGN.md, Retention).

No other module computes a retention period. Each rule can be overridden by an environment
variable (set from a template parameter): RETENTION_<RULE>_SECONDS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from rightsdesk import clock


class Rule(str, Enum):
    UNVERIFIED_REQUEST = "unverified_request"
    VERIFICATION_CODE = "verification_code"
    DELIVERED_SUBJECT_DATA = "delivered_subject_data"
    CLOSED_INTERNAL_REQUEST = "closed_internal_request"
    SKELETON = "skeleton"
    CONSENT_RECORD = "consent_record"


@dataclass(frozen=True)
class RetentionRule:
    rule: Rule
    keep: timedelta
    then: str  # "delete" the item, or "purge" its personal fields and keep the skeleton


DEFAULTS: dict[Rule, RetentionRule] = {
    Rule.UNVERIFIED_REQUEST: RetentionRule(Rule.UNVERIFIED_REQUEST, timedelta(hours=72), "delete"),
    Rule.VERIFICATION_CODE: RetentionRule(Rule.VERIFICATION_CODE, timedelta(minutes=15), "delete"),
    Rule.DELIVERED_SUBJECT_DATA: RetentionRule(Rule.DELIVERED_SUBJECT_DATA, timedelta(hours=1), "purge"),
    Rule.CLOSED_INTERNAL_REQUEST: RetentionRule(Rule.CLOSED_INTERNAL_REQUEST, timedelta(days=30), "purge"),
    Rule.SKELETON: RetentionRule(Rule.SKELETON, timedelta(days=3 * 365), "delete"),
    Rule.CONSENT_RECORD: RetentionRule(Rule.CONSENT_RECORD, timedelta(days=5 * 365), "delete"),
}

# Expiry-index buckets: one partition per hour of expiry, so a sweep reads only due buckets.
BUCKET_SECONDS = 3600


def rule(name: Rule) -> RetentionRule:
    default = DEFAULTS[name]
    override = os.environ.get(f"RETENTION_{name.value.upper()}_SECONDS")
    if override:
        return RetentionRule(name, timedelta(seconds=int(override)), default.then)
    return default


def keep_for(name: Rule, override: timedelta | None = None) -> timedelta:
    """How long to keep; a per-controller override (e.g. purge-after) replaces the default."""
    return override if override is not None else rule(name).keep


def expires_at(name: Rule, start: datetime, override: timedelta | None = None) -> int:
    """Epoch seconds at which data under `name` that started at `start` must be gone."""
    return int((start + keep_for(name, override)).timestamp())


def expiry_bucket(expires_epoch: int) -> str:
    return f"EXP#{expires_epoch // BUCKET_SECONDS * BUCKET_SECONDS}"


def expiry_index_keys(expires_epoch: int, pk: str, sk: str) -> dict[str, str]:
    """GSI2 attributes that let the sweeper find this item by when it expires."""
    return {"gsi2pk": expiry_bucket(expires_epoch), "gsi2sk": f"{expires_epoch:012d}#{pk}#{sk}"}


def schedule(name: Rule, start: datetime, pk: str, sk: str, override: timedelta | None = None) -> dict:
    """Attributes that put an item on the sweeper's list: which rule, when, and the GSI2 keys."""
    due = expires_at(name, start, override)
    return {"retention_rule": name.value, "retention_due_at": due, **expiry_index_keys(due, pk, sk)}


def schedule_actions(model, name: Rule, start: datetime, override: timedelta | None = None) -> list:
    """The same as `schedule`, as pynamodb update actions on an existing item."""
    values = schedule(name, start, model.pk, model.sk, override)
    return [getattr(type(model), attribute).set(value) for attribute, value in values.items()]


def is_expired(expires_epoch: int | None, at: int | None = None) -> bool:
    """DynamoDB deletes TTL items up to two days late; every read treats them as gone already."""
    if expires_epoch is None:
        return False
    return expires_epoch <= (at if at is not None else clock.epoch())
