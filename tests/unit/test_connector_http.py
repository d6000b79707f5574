"""The HTTP connector against a real local endpoint that checks Standard Webhooks signatures with
the public library: find, export, erase, verify; refusals by the SSRF guard; bad answers."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook

from rightsdesk.connectors import base, build
from rightsdesk.connectors.definitions import parse_definition

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
SECRET_ARN = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:product-hook"


class Product:
    """The product's side: a store per email, and what it was asked."""

    def __init__(self) -> None:
        self.rows = {"ada@example.com": [{"id": "r1", "plan": "pro"}, {"id": "r2", "plan": "pro"}]}
        self.asked: list[dict] = []
        self.answer_override: tuple[int, bytes] | None = None

    def handle(self, payload: dict) -> dict:
        data = payload["data"]
        email = data["identities"]["email"]
        self.asked.append({"type": payload["type"], "webhook": data["action"]})
        rows = self.rows.get(email, [])
        if data["action"] == "find":
            return {
                "count": len(rows),
                "keys": [r["id"] for r in rows],
                "yields": {"account": "acct-1"} if rows else {},
            }
        if data["action"] == "export":
            return {"records": rows}
        if data["action"] == "erase":
            return {"erased": len(self.rows.pop(email, []))}
        return {"remaining": len(rows)}


@pytest.fixture
def product() -> Iterator[tuple[Product, str]]:
    state = Product()
    verifier = Webhook(SECRET)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            try:
                payload = verifier.verify(body, dict(self.headers))
            except Exception:
                self.send_response(401)
                self.end_headers()
                return
            status, answer = state.answer_override or (200, json.dumps(state.handle(payload)).encode())
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/rightsdesk"
    server.shutdown()
    server.server_close()


def connector(url: str, *, secret: str = SECRET, loopback: bool = True, **overrides):
    document = {
        "kind": "http",
        "id": "billing-api",
        "url": url,
        "needs": ["email"],
        "yields": {"account_id": "account"},
        "signing_secret_arn": SECRET_ARN,
        "enabled": True,
    }
    document.update(overrides)
    return build(
        parse_definition(document),
        "req_http_1",
        secrets=lambda arn: [secret] if arn == SECRET_ARN else [],
        allow_loopback_http=loopback,
    )


SUBJECT = {"email": "ada@example.com"}


def test_find_export_erase_verify_through_signed_requests(product):
    state, url = product
    subject = connector(url)
    found = subject.find(SUBJECT)
    assert (found.count, found.derived) == (2, {"account_id": ("acct-1",)})
    assert subject.export(found) == [{"id": "r1", "plan": "pro"}, {"id": "r2", "plan": "pro"}]
    outcome = base.erase_and_verify(subject, SUBJECT, found)
    assert (outcome.result, outcome.erased, outcome.remaining) == ("done", 2, 0)
    assert [a["type"] for a in state.asked] == [
        f"rightsdesk.connector.{a}" for a in ("find", "export", "erase", "verify")
    ]
    assert base.erase_and_verify(subject, SUBJECT).result == "nothing_found"
    assert "ada@example.com" not in outcome.to_json() and "r1" not in outcome.to_json()


def test_a_wrong_secret_is_refused_by_the_product_and_fails_the_step(product):
    _, url = product
    outcome, _ = base.plan(connector(url, secret="whsec_" + base64.b64encode(b"x" * 32).decode()), SUBJECT)
    assert (outcome.result, outcome.failure) == ("failed", {"code": "http_401"})


def test_the_ssrf_guard_refuses_loopback_outside_the_local_run(product):
    state, url = product
    outcome, _ = base.plan(connector(url, loopback=False), SUBJECT)
    assert (outcome.result, outcome.failure) == ("failed", {"code": "refused_address"})
    assert state.asked == []


@pytest.mark.parametrize(
    ("status", "answer", "code"),
    [
        (500, b"{}", "http_500"),
        (202, b"{}", "callback_not_supported"),
        (200, b"not json", "bad_answer"),
        (200, b'{"count": -1}', "bad_answer"),
        (200, b'{"count": 2, "keys": ["only-one"]}', "bad_answer"),
        (200, b'{"count": 1, "yields": {"account": 7}}', "bad_answer"),
        (200, b"[]", "bad_answer"),
    ],
)
def test_answers_outside_the_protocol_fail_with_a_stable_code(product, status, answer, code):
    state, url = product
    state.answer_override = (status, answer)
    outcome, _ = base.plan(connector(url), SUBJECT)
    assert (outcome.result, outcome.failure) == ("failed", {"code": code})


def test_an_http_definition_names_its_secret_and_holds_none():
    with pytest.raises(Exception) as error:
        parse_definition(
            {
                "kind": "http",
                "id": "x-api",
                "url": "https://a.example/",
                "needs": ["email"],
                "signing_secret_arn": SECRET,
            }
        )
    assert "signing_secret_arn" in error.value.fields
