"""The connectors' part of a subject's export: one section per source, in JSON, HTML and CSV.

A section is what a connector exported for the request, as a plain dict: `{"connector_id", "kind",
"records": [{...}, ...]}` (the orchestration stores them; rightsdesk.own_data.exports is given the
list). Per section:

- JSON: the records as they are, with a JSON Schema (draft 2020-12) inferred from them: each
  field's types as seen (`null` where a record lacks a value or holds null), nested objects and
  arrays described the same way, `required` for the fields every record has. The schema says what
  this subject's records look like, not what the store allows.
- HTML: one table per section, a column per field (first seen first); nested values are shown as
  JSON text. Jinja's autoescape makes every value text, whatever it holds.
- CSV: one file per section whose records are flat (no object or array values), RFC 4180 (quoted
  where needed, CRLF). A text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return
  gets a leading `'` so that a spreadsheet shows it instead of running it as a formula (OWASP's
  CSV injection advice); the JSON file keeps every value exactly.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return "string"  # anything else is shown as its text


def infer_schema(values: Sequence[Any]) -> dict[str, Any]:
    """The JSON Schema of `values` taken together (one value's schema when there is one)."""
    types = {_type(value) for value in values}
    if {"integer", "number"} <= types:
        types.discard("integer")  # every integer is a number
    schema: dict[str, Any] = {}
    if types:
        ordered = sorted(types)
        schema["type"] = ordered[0] if len(ordered) == 1 else ordered
    objects = [value for value in values if isinstance(value, Mapping)]
    if objects:
        schema.update(_object_schema(objects))
    arrays = [item for value in values if isinstance(value, (list, tuple)) for item in value]
    if "array" in types:
        schema["items"] = infer_schema(arrays) if arrays else {}
    return schema


def _object_schema(objects: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    names = _columns(objects)
    properties = {}
    for name in names:
        present = [obj[name] for obj in objects if name in obj]
        properties[name] = infer_schema(present)
        if len(present) < len(objects):  # missing in some records: say so as null
            kinds = properties[name].get("type")
            listed = [kinds] if isinstance(kinds, str) else list(kinds or [])
            if "null" not in listed:
                listed = sorted([*listed, "null"])
                properties[name]["type"] = listed[0] if len(listed) == 1 else listed
    return {
        "properties": properties,
        "required": [name for name in names if all(name in obj for obj in objects)],
    }


def section_schema(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The schema of one section's records: an array of objects, inferred from them."""
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "type": "array",
        "items": {"type": "object", **_object_schema(records)} if records else {"type": "object"},
    }


def _columns(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every field of the records, first seen first."""
    return list(dict.fromkeys(str(name) for record in records for name in record))


def is_flat(records: Sequence[Mapping[str, Any]]) -> bool:
    """Whether every value is a scalar: such records make one CSV table."""
    return all(not isinstance(value, (Mapping, list, tuple)) for record in records for value in record.values())


def source(section: Mapping[str, Any]) -> dict[str, Any]:
    """A section as the JSON document holds it: its records, their count and inferred schema, and
    whether it is offered as CSV."""
    records = [dict(record) for record in section.get("records") or []]
    return {
        "connector_id": str(section["connector_id"]),
        "kind": str(section.get("kind") or ""),
        "count": len(records),
        "csv": bool(records) and is_flat(records),
        "schema": section_schema(records),
        "records": records,
    }


def cell_text(value: Any) -> str:
    """A value as a table cell shows it: text as it is, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def table(records: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """(the columns, each record's cells): what the HTML page shows of a section."""
    columns = _columns(records)
    return columns, [[cell_text(record.get(name)) for name in columns] for record in records]


def _csv_cell(value: Any) -> str:
    text = cell_text(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def csv_text(records: Sequence[Mapping[str, Any]]) -> str:
    """The section as one CSV file (header row first). ValueError if the records are not flat."""
    if not is_flat(records):
        raise ValueError("records with nested values have no CSV form; the JSON file holds them")
    columns = _columns(records)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_csv_cell(name) for name in columns])
    for record in records:
        writer.writerow([_csv_cell(record.get(name)) for name in columns])
    return out.getvalue()
