"""JSON bodies no route can read safely are refused before routing (rightsdesk.platform.http.json_problem):
nested deeper than MAX_JSON_DEPTH or holding an overlong number; anything else passes on, malformed
JSON included (the router answers that itself)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rightsdesk.platform import http


def nested(depth: int) -> str:
    """`depth` containers, alternately objects and arrays, around one value."""
    value: object = 1
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return json.dumps(value)


@pytest.mark.parametrize("depth", [0, 1, 5, http.MAX_JSON_DEPTH])
def test_bodies_up_to_the_depth_pass(depth):
    assert http.json_problem(nested(depth)) is None


@pytest.mark.parametrize("depth", [http.MAX_JSON_DEPTH + 1, 100, 900, 5000])
def test_deeper_bodies_are_a_400(depth):
    body = "[" * depth + "]" * depth if depth > 900 else nested(depth)
    status, code, _ = http.json_problem(body)
    assert (status, code) == (400, "malformed_json")


@pytest.mark.parametrize("number", ["9" * 65, "1." + "1" * 70, "-" + "9" * 5000, "1e" + "9" * 80])
def test_overlong_numbers_are_a_400(number):
    status, code, _ = http.json_problem('{"name": ' + number + "}")
    assert (status, code) == (400, "malformed_json")


@pytest.mark.parametrize("body", ['{"site": "de', "not json", "", "NaN", '{"a": 1e400}', '"\\ud800"'])
def test_other_bodies_are_left_to_the_router(body):
    assert http.json_problem(body) is None


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
        max_leaves=30,
    )
)
def test_a_document_is_refused_exactly_when_it_nests_too_deep(document):
    def depth(value) -> int:
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        return 1 + max((depth(child) for child in children), default=0) if isinstance(value, (dict, list)) else 0

    refused = http.json_problem(json.dumps(document)) is not None
    assert refused == (depth(document) > http.MAX_JSON_DEPTH)
