"""The connectors' sections of a subject's export: one source per section in the JSON with a schema
inferred from its records (which the records then validate against), one escaped table per section
on the page, and a CSV file per flat section that a spreadsheet cannot run as a formula."""

from __future__ import annotations

import csv
import io
import json

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rightsdesk.kernel.errors import NotFound
from rightsdesk.own_data import export_sections, exports, own_requests
from tests.unit.test_own_data import own_request, world  # noqa: F401 - the own-data world fixture

HOSTILE = '<script>alert("x")</script>'
SECTIONS = [
    {
        "connector_id": "users-table",
        "kind": "dynamodb",
        "records": [
            {"pk": "USER#u-1", "name": HOSTILE, "age": 41, "vip": True},
            {"pk": "USER#u-1", "name": 'Ada, "the"\nfirst', "score": 1.5, "formula": '=HYPERLINK("http://x")'},
        ],
    },
    {
        "connector_id": "transcripts",
        "kind": "s3",
        "records": [{"object": "chats/1.jsonl", "row": {"text": "<b>hi</b>", "tags": ["a", 1]}}],
    },
    {"connector_id": "empty-pool", "kind": "cognito", "records": []},
]


# ------------------------------------------------------------------ inferred schemas


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2], {"type": "integer"}),
        ([1, 2.5], {"type": "number"}),
        (["a", None], {"type": ["null", "string"]}),
        ([True, False], {"type": "boolean"}),
        ([[1, "a"]], {"type": "array", "items": {"type": ["integer", "string"]}}),
        ([[]], {"type": "array", "items": {}}),
        (
            [{"a": 1}, {"a": 2, "b": "x"}],
            {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": ["null", "string"]}},
                "required": ["a"],
            },
        ),
    ],
)
def test_a_schema_says_the_types_as_seen(values, expected):
    assert export_sections.infer_schema(values) == expected


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=6), json_values, max_size=4), max_size=4))
def test_the_records_always_validate_against_their_inferred_schema(records):
    jsonschema.Draft202012Validator(export_sections.section_schema(records)).validate(records)


def test_a_source_counts_its_records_and_offers_csv_only_when_flat():
    sources = [export_sections.source(section) for section in SECTIONS]
    assert [(s["connector_id"], s["count"], s["csv"]) for s in sources] == [
        ("users-table", 2, True),
        ("transcripts", 1, False),
        ("empty-pool", 0, False),
    ]
    users = sources[0]["schema"]["items"]
    assert users["required"] == ["pk", "name"]
    assert users["properties"]["age"]["type"] == ["integer", "null"]


# ------------------------------------------------------------------ CSV


def test_csv_quotes_separators_quotes_and_newlines_and_defuses_formulas():
    text = export_sections.csv_text(SECTIONS[0]["records"])
    assert text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["pk", "name", "age", "vip", "score", "formula"]
    assert rows[1] == ["USER#u-1", HOSTILE, "41", "true", "", ""]
    assert rows[2][1] == 'Ada, "the"\nfirst', "read back exactly"
    assert rows[2][5] == '\'=HYPERLINK("http://x")', "a spreadsheet shows it, never runs it"


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_every_formula_start_is_defused_in_cells_and_headers(start):
    rows = list(csv.reader(io.StringIO(export_sections.csv_text([{start + "h": start + "1+1"}]), newline="")))
    assert rows == [["'" + start + "h"], ["'" + start + "1+1"]]


def test_nested_records_have_no_csv():
    with pytest.raises(ValueError):
        export_sections.csv_text(SECTIONS[1]["records"])


# ------------------------------------------------------------------ the export: JSON, page, CSV download


def test_the_export_holds_one_source_per_section_and_renders_them_escaped(world):  # noqa: F811
    request_id, token = own_request("sections@example.org", "portability")
    assert own_requests.carry_out(request_id) == "completed"
    request, until = exports.authorize(request_id, token)
    doc = exports.document(request, until, SECTIONS)
    jsonschema.Draft202012Validator(exports.schema()).validate(doc)
    assert [s["connector_id"] for s in doc["sources"]] == ["users-table", "transcripts", "empty-pool"]
    for found in doc["sources"]:
        jsonschema.Draft202012Validator(found["schema"]).validate(found["records"])
    assert json.loads(json.dumps(doc))["sources"][0]["records"][0]["name"] == HOSTILE, "JSON keeps values exactly"

    for locale, heading in (
        ("en", "Data in our services"),
        ("de", "Daten in unseren Diensten"),
        ("sl", "Podatki v naših storitvah"),
    ):
        html = exports.page(doc, locale, token)
        assert heading in html
    assert HOSTILE not in html and "&lt;script&gt;" in html
    assert "<b>hi</b>" not in html and "&lt;b&gt;hi&lt;/b&gt;" in html  # nested values: JSON text, escaped
    assert html.count("<table>") == 2, "one table per section with records"
    assert "format=csv&amp;section=users-table" in html and "section=transcripts" not in html

    name, text = exports.csv_file(doc, "users-table")
    assert name == f"rightsdesk-export-{request_id}-users-table.csv" and text.startswith("pk,name,")
    with pytest.raises(exports.NotTabular):
        exports.csv_file(doc, "transcripts")
    with pytest.raises(NotFound):
        exports.csv_file(doc, "no-such-source")


def test_without_sections_the_export_is_as_before(world):  # noqa: F811
    request_id, token = own_request("nosections@example.org", "access")
    own_requests.carry_out(request_id)
    request, until = exports.authorize(request_id, token)
    doc = exports.document(request, until)
    assert doc["sources"] == []
    assert "Data in our services" not in exports.page(doc, "en", token)


# ------------------------------------------------------------------ the download through the public API


def _public_api():
    import importlib.util
    import sys
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "functions" / "public_api"
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location("_export_sections_public_app", folder / "app.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
    return module


def _get(api, request_id: str, query: dict) -> dict:
    from tests.support.notices_world import lambda_context

    path = f"/v1/requests/{request_id}/export"
    event = {
        "resource": "/v1/requests/{id}/export",
        "path": path,
        "httpMethod": "GET",
        "headers": {"Accept": "*/*"},
        "multiValueHeaders": {"Accept": ["*/*"]},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()},
        "pathParameters": {"id": request_id},
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": "/v1/requests/{id}/export",
            "httpMethod": "GET",
            "stage": "dev",
            "requestId": "r",
            "domainName": "api.example",
            "identity": {"sourceIp": "192.0.2.7"},
        },
    }
    return api.lambda_handler(event, lambda_context())


def test_a_flat_section_downloads_as_csv_with_the_status_token(world, monkeypatch):  # noqa: F811
    api = _public_api()
    monkeypatch.setattr(exports, "connector_sections", lambda request_id: SECTIONS)
    request_id, token = own_request("csv@example.org", "portability")
    own_requests.carry_out(request_id)
    answer = _get(api, request_id, {"format": "csv", "section": "users-table", "token": token})
    assert answer["statusCode"] == 200, answer["body"]
    headers = {**answer.get("headers", {}), **{k: v[0] for k, v in (answer.get("multiValueHeaders") or {}).items()}}
    assert headers["Content-Type"].startswith("text/csv")
    assert f'filename="rightsdesk-export-{request_id}-users-table.csv"' in headers["Content-Disposition"]
    assert list(csv.reader(io.StringIO(answer["body"], newline="")))[1][1] == HOSTILE
    nested = _get(api, request_id, {"format": "csv", "section": "transcripts", "token": token})
    assert (nested["statusCode"], json.loads(nested["body"])["error"]["code"]) == (409, "section_not_tabular")
    missing = _get(api, request_id, {"format": "csv", "token": token})
    assert missing["statusCode"] == 422
    assert _get(api, request_id, {"format": "csv", "section": "users-table", "token": "rst_wrong"})["statusCode"] == 401
