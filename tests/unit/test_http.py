import pytest

from rightsdesk.platform import http


def test_field_errors_map_to_stable_codes_without_echoing_input():
    errors = [
        {"type": "missing", "loc": ("body", "site"), "msg": "Field required", "input": {}},
        {"type": "string_pattern_mismatch", "loc": ("body", "email"), "msg": "x", "input": "ana@@example"},
        {"type": "enum", "loc": ("body", "type"), "msg": "x", "input": "nope"},
        {"type": "string_too_long", "loc": ("body", "details"), "msg": "x", "input": "y" * 5000},
    ]
    status, code, fields = http.field_errors(errors)
    assert (status, code) == (422, "invalid_input")
    assert fields == {"site": "required", "email": "invalid_email", "type": "invalid_choice", "details": "too_long"}
    assert "ana@@example" not in str(http.error_body(code, "m", fields))


def test_malformed_json_is_a_400():
    assert http.field_errors([{"type": "json_invalid", "loc": ("body", 3), "msg": "x"}])[:2] == (400, "malformed_json")


def test_body_checks():
    assert http.check_body("POST", "application/json", 20_000, 16_384)[0] == 413
    assert http.check_body("POST", "text/plain", 10, 16_384)[0] == 415
    assert http.check_body("POST", "application/json; charset=utf-8", 10, 16_384) is None
    assert http.check_body("POST", "application/x-www-form-urlencoded", 10, 16_384) is None
    assert http.check_body("GET", None, 0, 16_384) is None


def test_browsers_get_html():
    assert http.wants_html("text/html,application/xhtml+xml,*/*;q=0.8")
    assert not http.wants_html("*/*")
    assert not http.wants_html("application/json")


# RFC 6750 section 2.1: "Bearer" (any case) 1*SP b64token. Every caller (the status routes, the
# export, the controller API, its authorizer) reads the header through http.bearer_token.
BEARER_HEADERS = [
    ("Bearer rst_abc-DEF_123", "rst_abc-DEF_123"),
    ("bearer rst_abc", "rst_abc"),  # the scheme is case-insensitive
    ("BEARER rst_abc", "rst_abc"),
    ("Bearer   rst_abc", "rst_abc"),  # 1*SP
    ("  Bearer rst_abc \t", "rst_abc"),  # the field value's own surrounding whitespace is not part of it
    ("Bearer abc+/=", "abc+/="),  # b64token: trailing "=" allowed
    ("Bearer abc.def~", "abc.def~"),
    ("Bearer rst_abc def", None),  # a space inside: not a b64token
    ("Bearer rst_abc\tdef", None),  # a tab inside
    ("Bearer\trst_abc", None),  # a tab is not the SP the grammar asks for
    ("Bearer", None),
    ("Bearer ", None),
    ("Bearer    ", None),
    ("", None),
    (None, None),
    ("Basic dXNlcjpwYXNz", None),
    ("Bearerrst_abc", None),
    ("Bearer a=b", None),  # "=" only at the end
    ("Bearer ä", None),
]


@pytest.mark.parametrize(("header", "token"), BEARER_HEADERS)
def test_a_bearer_token_is_read_as_rfc_6750_says(header, token):
    assert http.bearer_token(header) == token
