"""Event patterns (Lambda event-source FilterCriteria, EventBridge rules) matched by moto's own
EventBridge matcher, moto.events.models.EventPattern.

moto's matcher agrees with AWS on every pattern the template uses (tests/template/
test_event_patterns.py holds them to the sample events): exact values, exists (a leaf under a
missing object is missing, so {"exists": false} holds there), and the value lists of an SES event's
tags. What is kept here is a check it lacks: moto treats a filter name it does not know as a match,
so a typo (`{"prefx": ...}`) would deliver every record locally while Lambda rejects the mapping.
Patterns are checked against the filters Lambda's event filtering and EventBridge both have, and
anything else fails loudly when the runner loads the template.
"""

from __future__ import annotations

import json
from typing import Any

from moto.events.models import EventPattern

FILTERS = {"prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists"}


def parse_filters(filter_criteria: Any) -> list[EventPattern]:
    """A mapping's FilterCriteria (patterns as JSON strings or objects) as matchers."""
    return [pattern_of(item.get("Pattern")) for item in (filter_criteria or {}).get("Filters") or []]


def pattern_of(pattern: str | dict) -> EventPattern:
    raw = pattern if isinstance(pattern, str) else json.dumps(pattern)
    matcher = EventPattern.load(raw)  # moto refuses what is not JSON, or a value that is not a list or object
    _check_filters(matcher.get_pattern())
    return matcher


def any_match(patterns: list[EventPattern], record: dict) -> bool:
    """Lambda delivers a record when any filter matches; with no filters, every record."""
    return not patterns or any(pattern.matches_event(record) for pattern in patterns)


def matches(pattern: str | dict | EventPattern, record: dict) -> bool:
    matcher = pattern if isinstance(pattern, EventPattern) else pattern_of(pattern)
    return matcher.matches_event(record)


def _check_filters(node: dict, path: str = "") -> None:
    for key, value in node.items():
        where = f"{path}.{key}" if path else key
        if isinstance(value, dict):
            _check_filters(value, where)
            continue
        for rule in value:
            if isinstance(rule, dict):
                _check_rule(rule, where)


def _check_rule(rule: dict, where: str) -> None:
    if len(rule) != 1 or next(iter(rule)) not in FILTERS:
        raise ValueError(
            f"filter {rule!r} at {where!r} is not one the local run supports ({', '.join(sorted(FILTERS))})"
        )
    ((name, argument),) = rule.items()
    if name == "anything-but" and isinstance(argument, dict):
        _check_rule(argument, where)
