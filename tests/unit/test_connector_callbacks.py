"""The HTTP connector finishing later through a one-time callback URL (rightsdesk.connectors.callbacks),
against moto in-process and a real local product endpoint, the callback route called through
ConnectorCallbackFunction's handler: a 202 leaves the step waiting without answering Step Functions;
the signed callback records the outcome once and answers the task; a second call is 409, a wrong or
unknown token the same 404, a late one 410, an unsigned or badly signed one 401, a bad body 422,
none of them storing anything; the deadline fails the step on the clock; a sync answer withdraws
the offer; no token or secret reaches a log."""

from __future__ import annotations

import base64
import importlib.util
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from moto import mock_aws

from rightsdesk import connectors as connectors_package
from rightsdesk.connectors import callbacks, execution, receipts, registry, runs
from rightsdesk.kernel import clock, retention
from rightsdesk.platform import config, operator_identity, webhooks
from rightsdesk.store.items.requests import RequestItem
from tests.support.aws import moto_cloud

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_" + base64.b64encode(b"c" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"x" * 32).decode()
SECRET_ARN = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:rightsdesk-connector-later"
EMAIL = "grace.callback@example.org"
BASE_URL = "https://privacy.example"


class Product:
    """The product's side: two rows for EMAIL; `later` actions answer 202 and keep the callback URL."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict]] = {}
        self.later: set[str] = set()
        self.callback_urls: list[str] = []
        self.before_202: Any = None  # called with the callback URL before the 202 is answered
        self.drop: set[str] = set()  # actions whose connection is closed without an answer

    def handle(self, payload: dict) -> tuple[int, dict]:
        data = payload["data"]
        email = data["identities"]["email"]
        rows = self.rows.get(email, [])
        action = data["action"]
        if "callback_url" in data:
            self.callback_urls.append(data["callback_url"])
        if action in self.later:
            if self.before_202 is not None:
                self.before_202(data["callback_url"])
            return 202, {}
        if action == "find":
            return 200, {"count": len(rows), "keys": [r["id"] for r in rows]}
        if action == "export":
            return 200, {"records": rows}
        if action == "erase":
            return 200, {"erased": len(self.rows.pop(email, []))}
        return 200, {"remaining": len(rows)}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[tuple[Product, str]]:
    holder: dict[str, Product] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            status, answer = holder["product"].handle(json.loads(body))
            if json.loads(body)["data"]["action"] in holder["product"].drop:
                self.close_connection = True  # no answer at all: as a timeout or a dropped connection
                return
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(answer).encode())

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder, f"http://127.0.0.1:{server.server_address[1]}/rightsdesk"
    server.shutdown()
    server.server_close()


class Tasks:
    """Stands for Step Functions' task answers."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.broken = False

    def send_task_success(self, **arguments: Any) -> dict:
        if self.broken:
            raise RuntimeError("network")
        self.calls.append(("success", arguments))
        return {}

    def send_task_failure(self, **arguments: Any) -> dict:
        self.calls.append(("failure", arguments))
        return {}

    def start_execution(self, **arguments: Any) -> dict:
        return {"executionArn": f"arn:aws:states:eu-central-1:123456789012:execution:runs:{arguments['name']}"}


@pytest.fixture(scope="module")
def cloud():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        found = moto_cloud(patch, "rightsdesk-callbacks", data_key=True)
        kms = found.session.client("kms")
        key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        sfn = found.session.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="connector-runs",
            definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/connector-runs",
        )["stateMachineArn"]
        patch.setenv("CONNECTOR_STATE_MACHINE_ARN", machine)
        patch.setenv("RECEIPT_SIGNING_KEY_ID", key)
        patch.setenv("PUBLIC_BASE_URL", BASE_URL)
        patch.setenv("ALLOW_HTTP_WEBHOOKS", "true")
        config.reload()
        yield found, kms, key
    config.reload()


@pytest.fixture
def world(cloud, endpoint, monkeypatch):
    """One enabled HTTP connector (email) over a fresh product; Step Functions' answers recorded."""
    holder, url = endpoint
    product = holder["product"] = Product()
    operator = operator_identity.local("callback-tester")
    for stored in registry.list_connectors():
        registry.remove(stored.connector_id, actor=operator)
    registry.add(
        {"kind": "http", "id": "later", "url": url, "needs": ["email"], "signing_secret_arn": SECRET_ARN},
        actor=operator,
    )
    registry.enable("later", actor=operator)
    real_build = connectors_package.build
    monkeypatch.setattr(
        connectors_package,
        "build",
        lambda d, request_id, **_: real_build(d, request_id, secrets=lambda arn: [SECRET], allow_loopback_http=True),
    )
    monkeypatch.setattr(callbacks, "SECRETS", lambda arn: [SECRET] if arn == SECRET_ARN else [])
    tasks = Tasks()
    monkeypatch.setattr(runs, "step_functions", lambda: tasks)
    return SimpleNamespace(product=product, tasks=tasks, cloud=cloud)


@pytest.fixture
def route(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "rightsdesk-test")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "connector-callback")
    spec = importlib.util.spec_from_file_location(
        "_connector_callback_app", ROOT / "functions/connector_callback/app.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def new_request(kind: str = "erasure") -> str:
    request_id = "req_cb" + clock.now().strftime("%H%M%S%f")
    now = clock.now()
    RequestItem(
        RequestItem.key(request_id),
        RequestItem.SK,
        request_id=request_id,
        controller_id="ctl_cb",
        site="callback.test",
        request_type=kind,
        status="in_progress",
        email=EMAIL,
        created_at=now,
        verified_at=now,
        expires_at=retention.request_expires_at(now, now),
    ).save()
    return request_id


def waiting_step(world, kind: str = "erasure", later: str = "erase") -> tuple[str, str, str]:
    """A run whose HTTP step the product answered 202: (request id, execution id, callback token)."""
    world.product.rows = {EMAIL: [{"id": "r1", "plan": "pro"}, {"id": "r2", "plan": "team"}]}
    world.product.later = {later}
    request_id = new_request(kind)
    started = execution.start(request_id, actor=operator_identity.local("ops"))
    assert execution.plan_step(request_id, started.execution_id) == {"stages": [["later"]]}
    with pytest.raises(execution.StepAwaitingCallback):
        execution.connector_step(request_id, started.execution_id, "later", task_token="tok-" + request_id)
    [url] = world.product.callback_urls[-1:]
    assert url.startswith(f"{BASE_URL}/v1/connectors/callback/cb_")
    return request_id, started.execution_id, callbacks.token_of_url(url)


def signed(document: Any, secret: str = SECRET, *, at: int | None = None) -> tuple[str, dict[str, str]]:
    body = json.dumps(document)
    headers = webhooks.signed_headers([secret], "msg_product_1", body.encode(), timestamp=at)
    return body, headers


def call(route, token: str, body: str, headers: dict[str, str]) -> tuple[int, dict]:
    event = {
        "resource": "/v1/connectors/callback/{token}",
        "path": f"/v1/connectors/callback/{token}",
        "httpMethod": "POST",
        "headers": {"content-type": "application/json", **headers},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "pathParameters": {"token": token},
        "requestContext": {"requestId": "req-ctx", "stage": "test", "identity": {"sourceIp": "203.0.113.9"}},
        "body": body,
        "isBase64Encoded": False,
    }
    context = SimpleNamespace(
        function_name="rightsdesk-test-ConnectorCallbackFunction",
        memory_limit_in_mb=512,
        function_version="$LATEST",
        invoked_function_arn="arn:aws:lambda:eu-central-1:123456789012:function:cb",
        aws_request_id="test-request",
        get_remaining_time_in_millis=lambda: 10_000,
    )
    answer = route.lambda_handler(event, context)
    return answer["statusCode"], json.loads(answer["body"])


def step_row(request_id: str) -> dict:
    [row] = [s for s in execution.view(request_id).steps if s["connector_id"] == "later"]
    return row


def public_key_pem(cloud) -> bytes:
    _, kms, key = cloud
    return receipts.public_key_pem(kms.get_public_key(KeyId=key)["PublicKey"]).encode()


DONE = {"result": "done", "erased": 2, "remaining": 0}


def test_a_202_waits_then_the_signed_callback_records_the_outcome_once_and_the_run_goes_on(world, route):
    request_id, execution_id, token = waiting_step(world)
    assert step_row(request_id)["state"] == "waiting_callback"
    assert world.tasks.calls == [], "the task is not answered while the product works"
    assert execution.view(request_id).status == "running"

    status, answer = call(route, token, *signed(DONE))
    assert (status, answer) == (200, {"request_id": request_id, "connector_id": "later", "result": "done"})
    [(kind, arguments)] = world.tasks.calls
    assert kind == "success" and arguments["taskToken"] == "tok-" + request_id
    assert json.loads(arguments["output"]) == {
        "connector_id": "later", "result": "done", "found": 2, "erased": 2, "kept": 0, "remaining": 0,
        "rectified": 0,
    }  # fmt: skip
    row = step_row(request_id)
    assert (row["state"], row["found"], row["erased"], row["remaining"]) == ("done", 2, 2, 0)

    again = call(route, token, *signed(DONE))
    assert again[0] == 409 and again[1]["error"]["code"] == "callback_used"
    assert len(world.tasks.calls) == 1, "a second call answers nothing more"

    execution.finish_step(request_id, execution_id)
    verified = receipts.verify(receipts.export(request_id), public_key_pem(world.cloud))
    assert verified.valid and verified.sealed and verified.entries == 2
    [entry] = [e for e in receipts.export(request_id)["entries"] if e["body"].get("connector")]
    assert entry["body"]["connector"]["id"] == "later"


def test_an_unknown_token_and_a_wrong_secret_get_the_same_404(world, route):
    _, _, token = waiting_step(world)
    callback_id = token.split("_")[1]
    tried = [
        f"cb_{'0' * 20}_{token.split('_', 2)[2]}",  # unknown id, a real secret
        f"cb_{callback_id}_{'A' * 43}",  # the real id, a wrong secret
        "cb_nonsense",
        "x" * 40,
    ]
    answers = [call(route, t, *signed(DONE)) for t in tried]
    assert {(status, json.dumps(body, sort_keys=True)) for status, body in answers} == {
        (404, json.dumps({"error": {"code": "callback_not_found", "message": "no such callback"}}, sort_keys=True))
    }
    assert world.tasks.calls == []
    assert call(route, token, *signed(DONE))[0] == 200, "the real token still works"


@pytest.mark.parametrize(
    "tamper, code",
    [
        (lambda body, headers: (body, {}), "bad_signature"),
        (lambda body, headers: signed(json.loads(body), OTHER_SECRET), "bad_signature"),
        (lambda body, headers: (body.replace('"erased": 2', '"erased": 9'), headers), "bad_signature"),
        (lambda body, headers: signed(json.loads(body), at=int(time.time()) - 3600), "signature_expired"),
    ],
    ids=["unsigned", "another secret", "body changed", "old timestamp"],
)
def test_a_callback_must_be_signed_with_the_connectors_secret(world, route, tamper, code):
    _, _, token = waiting_step(world)
    status, answer = call(route, token, *tamper(*signed(DONE)))
    assert (status, answer["error"]["code"]) == (401, code)
    assert world.tasks.calls == []
    assert call(route, token, *signed(DONE))[0] == 200, "a refused call used nothing up"


@pytest.mark.parametrize(
    "document, field",
    [
        ({"result": "done", "erased": 2}, "remaining"),
        ({"result": "done", "erased": 2, "remaining": 0, "records": []}, "records"),
        ({"result": "done", "erased": -1, "remaining": 0}, "erased"),
        ({"result": "finished"}, "result"),
        ({"result": "done", "erased": 2, "remaining": 0, "secret": "x"}, "secret"),
        ({"result": "done", "erased": "2", "remaining": 0}, "erased"),
    ],
)
def test_a_bad_body_is_a_422_that_stores_nothing(world, route, document, field):
    _, _, token = waiting_step(world)
    status, answer = call(route, token, *signed(document))
    assert status == 422 and field in json.dumps(answer["error"].get("fields"))
    assert world.tasks.calls == []
    assert call(route, token, *signed(DONE))[0] == 200


def test_the_callback_expires_with_the_step_timeout_and_the_schedule_fails_the_step(world, route):
    request_id, _, token = waiting_step(world)
    offset = clock.offset_seconds()
    clock.set_offset(offset + config.connector_step_timeout_seconds() - 5)
    try:
        assert callbacks.expire_due() == 0, "not due yet"
        clock.set_offset(offset + config.connector_step_timeout_seconds() + 5)
        status, answer = call(route, token, *signed(DONE))
        assert (status, answer["error"]["code"]) == (410, "callback_expired")
        assert callbacks.expire_due() >= 1
        assert ("failure", {
            "taskToken": "tok-" + request_id, "error": "rightsdesk.callback_timeout", "cause": "callback_timeout",
        }) in world.tasks.calls  # fmt: skip
        assert step_row(request_id)["state"] == "failed" and step_row(request_id)["failure"] == "callback_timeout"
        assert call(route, token, *signed(DONE))[0] == 410
        assert callbacks.expire_due() == 0, "failed once"
    finally:
        clock.set_offset(offset)


def test_a_failure_of_ours_after_the_claim_lets_the_product_call_again_and_records_once(world, route):
    request_id, _, token = waiting_step(world)
    world.tasks.broken = True
    status, _ = call(route, token, *signed(DONE))
    assert status == 500
    world.tasks.broken = False
    assert call(route, token, *signed(DONE))[0] == 200
    entries = [e for e in receipts.export(request_id)["entries"] if e["body"].get("connector")]
    assert len(entries) == 1, "the outcome is recorded once"
    assert [kind for kind, _ in world.tasks.calls] == ["success"]


def test_a_failed_result_fails_the_task_naming_the_products_word(world, route):
    request_id, _, token = waiting_step(world)
    status, answer = call(route, token, *signed({"result": "failed", "failure": "store_offline"}))
    assert (status, answer["result"]) == (200, "failed")
    assert world.tasks.calls == [
        ("failure", {"taskToken": "tok-" + request_id, "error": "rightsdesk.store_offline", "cause": "store_offline"})
    ]
    assert step_row(request_id)["state"] == "failed"


def test_records_remaining_after_the_products_erasure_fail_the_step(world, route):
    request_id, _, token = waiting_step(world)
    call(route, token, *signed({"result": "done", "erased": 1, "remaining": 1}))
    assert world.tasks.calls[0][1]["error"] == "rightsdesk.records_remain"


def test_an_export_reported_later_becomes_the_connectors_section(world, route):
    from rightsdesk.connectors import export_store

    request_id, _, token = waiting_step(world, kind="access", later="export")
    records = [{"id": "r1", "plan": "pro"}, {"id": "r2", "plan": "team"}]
    status, answer = call(route, token, *signed({"result": "done", "records": records}))
    assert (status, answer["result"]) == (200, "done")
    [section] = export_store.sections(request_id)
    assert (section["connector_id"], section["records"]) == ("later", records)
    assert step_row(request_id)["found"] == 2


def test_a_product_calling_back_before_its_202_arrives_is_recorded_and_the_step_stays_done(world, route):
    answers = []
    world.product.before_202 = lambda url: answers.append(call(route, callbacks.token_of_url(url), *signed(DONE)))
    request_id, execution_id, _ = waiting_step(world)
    assert [status for status, _ in answers] == [200]
    assert step_row(request_id)["state"] == "done", "the worker's 202 does not overwrite the recorded outcome"
    assert [kind for kind, _ in world.tasks.calls] == ["success"]
    execution.finish_step(request_id, execution_id)


def test_a_failure_reported_before_the_202_arrives_leaves_the_step_failed(world, route):
    world.product.before_202 = lambda url: call(route, callbacks.token_of_url(url), *signed({"result": "failed"}))
    request_id, _, _ = waiting_step(world)
    assert step_row(request_id)["state"] == "failed"
    assert world.tasks.calls[0][1]["error"] == "rightsdesk.product_failed"


def test_a_request_that_got_no_answer_leaves_its_url_open_for_the_product(world, route):
    world.product.rows = {EMAIL: [{"id": "r1"}, {"id": "r2"}]}
    world.product.drop = {"erase"}
    request_id = new_request()
    started = execution.start(request_id, actor=operator_identity.local("ops"))
    execution.plan_step(request_id, started.execution_id)
    with pytest.raises(execution.RetryStep):
        execution.connector_step(request_id, started.execution_id, "later", task_token="tok-" + request_id)
    [url] = world.product.callback_urls[-1:]
    assert call(route, callbacks.token_of_url(url), *signed(DONE))[0] == 200, "the product had it after all"
    assert step_row(request_id)["state"] == "done"
    assert world.tasks.calls[0][1]["taskToken"] == "tok-" + request_id


def test_an_answer_at_once_withdraws_the_offer(world, route):
    world.product.rows = {EMAIL: [{"id": "r1"}]}
    world.product.later = set()
    request_id = new_request()
    started = execution.start(request_id, actor=operator_identity.local("ops"))
    execution.plan_step(request_id, started.execution_id)
    summary = execution.connector_step(request_id, started.execution_id, "later", task_token="tok-sync")
    assert summary["result"] == "done"
    [url] = world.product.callback_urls[-1:]
    assert call(route, callbacks.token_of_url(url), *signed(DONE))[0] == 404


def test_a_202_to_a_request_that_offered_no_callback_fails_as_before(world):
    world.product.rows = {EMAIL: [{"id": "r1"}]}
    world.product.later = {"find"}
    request_id = new_request()
    started = execution.start(request_id, actor=operator_identity.local("ops"))
    execution.plan_step(request_id, started.execution_id)
    with pytest.raises(execution.RetryStep) as raised:
        execution.connector_step(request_id, started.execution_id, "later", task_token="tok-find")
    assert raised.value.code == "callback_not_supported"
    assert world.product.callback_urls == [], "a find is never offered a callback"


def test_no_token_or_secret_reaches_a_log(world, route, caplog, capsys):
    caplog.set_level(logging.INFO)
    request_id, _, token = waiting_step(world)
    call(route, token, *signed(DONE))
    call(route, token, *signed(DONE))
    logged = caplog.text + capsys.readouterr().out
    assert token not in logged and token.split("_", 2)[2] not in logged
    assert "tok-" + request_id not in logged and EMAIL not in logged
