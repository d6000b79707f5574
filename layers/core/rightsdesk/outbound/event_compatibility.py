"""The compatibility rule of the webhook event catalog: a published event type changes additively only.

Additive (allowed under the same type name): a new optional property, a new enum value (receivers
ignore values they do not know), a new event type, a new or changed description. Breaking (a new
type name `<type>.v2` instead, see rightsdesk.outbound.event_catalog): a property removed or renamed,
a type changed (narrowed or widened, nullability included), a new required property or one made
required or optional, an enum value removed, a `const` or a constraint (pattern, format, bounds,
additionalProperties ...) changed, a published type removed from the catalog.

Why a new property is optional: an event sent before it existed, stored by a receiver or sent again,
must still validate against the newer schema.

Works on plain JSON Schemas (the envelopes of event_catalog.schemas()); no AWS, no I/O.
"""

from __future__ import annotations

from typing import Any

# Keywords that document and never constrain: changing them is always allowed.
DOCUMENTATION = frozenset({"description", "title", "examples", "$comment", "deprecated"})
# Keywords this checker walks into itself; every other one must stay exactly as it was.
_WALKED = frozenset({"type", "enum", "properties", "required", "items", "additionalProperties"})


def breaking_changes(published: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]]) -> list[str]:
    """What breaks the rule between the published schemas and the current ones (by event type),
    one line each; empty when the change is additive or there is none."""
    problems = []
    for name, before in published.items():
        if name not in current:
            problems.append(f"{name}: the type was removed from the catalog (keep it, with superseded_by)")
            continue
        problems += [f"{name}: {problem}" for problem in schema_changes(before, current[name])]
    return problems


def _types(schema: dict[str, Any]) -> frozenset[str] | None:
    kind = schema.get("type")
    if kind is None:
        return None
    return frozenset([kind] if isinstance(kind, str) else kind)


def _where(path: str) -> str:
    return path or "the body"


def schema_changes(before: Any, after: Any, path: str = "") -> list[str]:
    """The breaking differences between two JSON Schemas of the same value."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return [] if before == after else [f"{_where(path)}: the schema changed"]
    problems = []
    if _types(before) != _types(after):
        old, new = (sorted(_types(s) or ["any"]) for s in (before, after))
        problems.append(f"{_where(path)}: type {'|'.join(old)} became {'|'.join(new)}")
    problems += _enum_changes(before, after, path)
    problems += _property_changes(before, after, path)
    if "items" in before or "items" in after:
        problems += schema_changes(before.get("items", {}), after.get("items", {}), f"{path}[]")
    problems += _additional_properties_changes(before, after, path)
    for keyword in sorted((set(before) | set(after)) - DOCUMENTATION - _WALKED):
        if before.get(keyword) != after.get(keyword):
            problems.append(
                f"{_where(path)}: `{keyword}` changed from {before.get(keyword)!r} to {after.get(keyword)!r}"
            )
    return problems


def _enum_changes(before: dict[str, Any], after: dict[str, Any], path: str) -> list[str]:
    if "enum" not in after:
        return []  # none, or dropped: every value is still allowed
    if "enum" not in before:
        return [f"{_where(path)}: an enum now restricts the values"]
    removed = [value for value in before["enum"] if value not in after["enum"]]
    return [f"{_where(path)}: enum value {value!r} removed" for value in removed]


def _property_changes(before: dict[str, Any], after: dict[str, Any], path: str) -> list[str]:
    problems = []
    old, new = before.get("properties") or {}, after.get("properties") or {}
    old_required, new_required = set(before.get("required") or ()), set(after.get("required") or ())
    for name, schema in old.items():
        where = f"{path}.{name}" if path else name
        if name not in new:
            problems.append(f"{where}: property removed (or renamed)")
            continue
        problems += schema_changes(schema, new[name], where)
        if name in old_required and name not in new_required:
            problems.append(f"{where}: no longer required (receivers rely on it)")
        if name not in old_required and name in new_required:
            problems.append(f"{where}: became required (earlier events may lack it)")
    for name in new:
        if name not in old and name in new_required:
            where = f"{path}.{name}" if path else name
            problems.append(f"{where}: a new property must be optional (earlier events lack it)")
    for name in sorted((old_required | new_required) - set(old) - set(new)):
        if (name in old_required) != (name in new_required):
            problems.append(f"{path}.{name}: required changed")
    return problems


def _additional_properties_changes(before: dict[str, Any], after: dict[str, Any], path: str) -> list[str]:
    old, new = before.get("additionalProperties", True), after.get("additionalProperties", True)
    if isinstance(old, dict) and isinstance(new, dict):
        return schema_changes(old, new, f"{path}.*")
    if old == new or new is True:
        return []
    return [f"{_where(path)}: additionalProperties narrowed"]
