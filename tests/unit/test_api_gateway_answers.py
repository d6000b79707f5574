"""rightsdesk.platform.api_gateway.answer: whatever the event or the router does, the answer is in the
error shape with the security headers; an environment's death (a BaseException) is not an answer."""

from __future__ import annotations

import json

import pytest

from rightsdesk.platform import api_gateway, http


def event(body: str = "", content_type: str = "application/json", method: str = "POST") -> dict:
    return {"httpMethod": method, "headers": {"Content-Type": content_type}, "body": body, "isBase64Encoded": False}


def failing(error: BaseException):
    def resolve():
        raise error

    return resolve


@pytest.mark.parametrize(
    "error",
    [
        RecursionError(),
        ValueError("a@b.example"),
        KeyError("x"),
        UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
    ],
)
def test_an_error_escaping_the_router_is_a_500_in_the_error_shape(error):
    answered = api_gateway.answer(event("{}"), failing(error))
    assert answered["statusCode"] == 500
    assert json.loads(answered["body"]) == http.error_body(
        "internal_error", "something went wrong on our side; please try again later"
    )
    assert http.SECURITY_HEADERS.items() <= answered["headers"].items()


def test_a_dying_environment_is_not_answered():
    class Died(BaseException):
        pass

    with pytest.raises(Died):
        api_gateway.answer(event("{}"), failing(Died()))


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", ""])
def test_a_nesting_bomb_never_reaches_the_router(content_type):
    answered = api_gateway.answer(event("[" * 800 + "]" * 800, content_type), failing(AssertionError("routed")))
    assert answered["statusCode"] == 400 and json.loads(answered["body"])["error"]["code"] == "malformed_json"
    assert http.SECURITY_HEADERS.items() <= answered["headers"].items()
