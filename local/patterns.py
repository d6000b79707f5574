"""Lambda event-source FilterCriteria: the EventBridge-style pattern subset the template can use.

Supported: exact values, prefix, suffix, equals-ignore-case, exists, anything-but (values or a
prefix), numeric ranges. A record matches a filter when every key of the pattern matches; it is
delivered when any filter matches.
"""

from __future__ import annotations

import json
import operator
from typing import Any

_MISSING = object()
_NUMERIC = {"<": operator.lt, "<=": operator.le, "=": operator.eq, ">=": operator.ge, ">": operator.gt}


def parse_filters(filter_criteria: Any) -> list[dict]:
    filters = (filter_criteria or {}).get("Filters") or []
    patterns = []
    for item in filters:
        pattern = item.get("Pattern")
        patterns.append(json.loads(pattern) if isinstance(pattern, str) else pattern)
    return patterns


def any_match(patterns: list[dict], record: dict) -> bool:
    return not patterns or any(matches(pattern, record) for pattern in patterns)


def matches(pattern: dict, record: Any) -> bool:
    for key, expected in pattern.items():
        actual = record.get(key, _MISSING) if isinstance(record, dict) else _MISSING
        if isinstance(expected, dict):
            # Lambda matches flattened paths: under a missing object every leaf is missing, so
            # {"exists": false} there holds (e.g. an OldImage attribute on a MODIFY).
            if actual is _MISSING:
                actual = {}
            if not isinstance(actual, dict) or not matches(expected, actual):
                return False
        elif isinstance(expected, list):
            if not _field_matches(expected, actual):
                return False
        else:
            raise ValueError(f"pattern values must be lists or objects, got {type(expected).__name__} at {key!r}")
    return True


def _field_matches(rules: list, actual: Any) -> bool:
    values = actual if isinstance(actual, list) else [actual]
    for rule in rules:
        if isinstance(rule, dict) and "exists" in rule:
            if (actual is not _MISSING) == bool(rule["exists"]):
                return True
            continue
        if any(value is not _MISSING and _rule_matches(rule, value) for value in values):
            return True
    return False


def _rule_matches(rule: Any, value: Any) -> bool:
    if not isinstance(rule, dict):
        return rule == value
    ((kind, arg),) = rule.items()
    if kind == "prefix":
        return isinstance(value, str) and value.startswith(arg)
    if kind == "suffix":
        return isinstance(value, str) and value.endswith(arg)
    if kind == "equals-ignore-case":
        return isinstance(value, str) and value.casefold() == str(arg).casefold()
    if kind == "anything-but":
        if isinstance(arg, dict):
            return not _rule_matches(arg, value)
        excluded = arg if isinstance(arg, list) else [arg]
        return value not in excluded
    if kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        pairs = zip(arg[0::2], arg[1::2], strict=False)
        return all(_NUMERIC[op](value, bound) for op, bound in pairs)
    raise ValueError(f"filter rule {kind!r} is not supported by the local run")
