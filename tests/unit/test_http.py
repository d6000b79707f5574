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
