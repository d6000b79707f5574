"""The HTTP connector finishing later, end to end on the local runner: the state machine runs in moto,
the worker asks a small product server in this process, which answers 202; the product then posts
its signed outcome to the one-time callback URL it was given (ConnectorCallbackFunction on the local
gateway), the run completes and the receipt verifies offline. A callback that never comes parks the
run when the step timeout passes on the clock. The stack is this module's own (connectors are
stack-wide); its tests run in file order, and its log is checked for secrets and identities.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from tests.support.flows import wait_for

pytestmark = pytest.mark.integration

SITE = "callbacks"
SECRET = "whsec_" + base64.b64encode(b"p" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"q" * 32).decode()
STEP_TIMEOUT_SECONDS = 3600  # ConnectorStepTimeoutSeconds' default
PERSONAL: set[str] = set()
SECRETS_SEEN: set[str] = set()


class Product:
    """The product's endpoint: finds the subject's rows, answers 202 to erase and export, keeps
    the callback URLs it was given (the test plays the product's background job)."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict]] = {}
        self.callbacks: dict[str, str] = {}  # request id -> callback URL
        self.refused = 0
        self.lock = threading.Lock()

    def answer(self, payload: dict) -> tuple[int, dict]:
        data = payload["data"]
        email = data["identities"]["email"]
        with self.lock:
            rows = self.rows.get(email, [])
            if data["action"] == "find":
                return 200, {"count": len(rows), "keys": [r["id"] for r in rows]}
            if data["action"] == "verify":
                return 200, {"remaining": len(rows)}
            self.callbacks[data["request_id"]] = data["callback_url"]
            return 202, {}


@pytest.fixture(scope="module")
def product() -> Iterator[tuple[Product, str]]:
    state = Product()
    verifier = Webhook(SECRET)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            try:
                payload = verifier.verify(body, dict(self.headers))
            except Exception:
                state.refused += 1
                self.send_response(401)
                self.end_headers()
                return
            status, answer = state.answer(payload)
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(answer).encode())

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/rightsdesk"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def calls_path(tmp_path_factory):
    return tmp_path_factory.mktemp("calls") / "calls.jsonl"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, calls_path):
    from tests.support.stack import start_stack

    running = start_stack(
        tmp_path_factory.mktemp("connector-callbacks-stack"), env={"RIGHTSDESK_LOCAL_RECORD_CALLS": str(calls_path)}
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def connector(stack, product, tmp_path_factory) -> str:
    """The operator's site and its HTTP connector, signing with a secret kept in Secrets Manager."""
    _, url = product
    stack.cli(
        "controllers", "add", "--name", "Callback Product", "--site", SITE, "--contact", "privacy@callbacks.test",
        "--delivery", "internal", "--id", "ctl_callbacks",
    )  # fmt: skip
    arn = stack.client("secretsmanager").create_secret(Name="rightsdesk-connector-product", SecretString=SECRET)["ARN"]
    path = tmp_path_factory.mktemp("connector") / "product.json"
    path.write_text(
        json.dumps({"kind": "http", "id": "product", "url": url, "needs": ["email"], "signing_secret_arn": arn})
    )
    stack.cli("connectors", "add", "--file", str(path))
    stack.cli("connectors", "enable", "product")
    return "product"


def subject(product: Product) -> str:
    email = f"later-{uuid.uuid4().hex[:8]}@example.org"
    PERSONAL.add(email)
    with product.lock:
        product.rows[email] = [{"id": "r1", "plan": "pro"}, {"id": "r2", "plan": "team"}]
    return email


def ask(stack, email: str, kind: str) -> tuple[str, str]:
    submitted = stack.post("/v1/requests", json={"site": SITE, "type": kind, "email": email})
    assert submitted.status_code == 202, submitted.text
    request_id = submitted.json()["request_id"]
    mail = wait_for(
        lambda: next((m for m in stack.outbox() if email in m["to"] and f"/verify/{request_id}" in m["text"]), None),
        "the verification code",
    )
    code = re.search(r"\b(\d{6})\b", mail["text"]).group(1)
    verified = stack.post(f"/v1/requests/{request_id}/verify", json={"code": code})
    assert verified.status_code == 200, verified.text
    return request_id, verified.json()["status_token"]


def item(stack, request_id: str, prefix: str) -> dict | None:
    items = stack.client("dynamodb").query(
        TableName="rightsdesk-local-RightsTable",
        KeyConditionExpression="pk = :pk AND begins_with(sk, :e)",
        ExpressionAttributeValues={":pk": {"S": f"REQ#{request_id}"}, ":e": {"S": prefix}},
        ScanIndexForward=False,
    )["Items"]
    return items[0] if items else None


def run_status(stack, request_id: str) -> str | None:
    found = item(stack, request_id, "EXECUTION#")
    return found["status"]["S"] if found else None


def step_state(stack, request_id: str) -> str | None:
    found = item(stack, request_id, "EXECSTEP#product")
    return found["state"]["S"] if found else None


def started_and_waiting(stack, product: Product, kind: str = "erasure") -> tuple[str, str, str]:
    """A request whose product step answered 202: (request id, status token, callback URL)."""
    email = subject(product)
    request_id, token = ask(stack, email, kind)
    if kind == "erasure":
        wait_for(lambda: run_status(stack, request_id) == "waiting", "the run to wait out the grace period")
        assert stack.cli_json("requests", "execute", request_id)["execution"]["status"] == "running"
    wait_for(
        lambda: step_state(stack, request_id) == "waiting_callback", "the step to wait for the product", timeout=60
    )
    url = product.callbacks[request_id]
    SECRETS_SEEN.add(url.rsplit("/", 1)[1])
    return request_id, token, url


def post_signed(url: str, document: dict, secret: str = SECRET) -> requests.Response:
    """The product's background job reporting, signed with the connector's secret (the public library)."""
    body = json.dumps(document)
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(timezone.utc)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
    }
    return requests.post(url, data=body, headers={"content-type": "application/json", **headers}, timeout=30)


def test_a_product_answering_202_completes_the_run_through_its_callback_and_the_receipt_verifies(
    stack, product, connector, tmp_path
):
    state, _ = product
    request_id, token, url = started_and_waiting(stack, state)
    assert url.startswith(stack.base_url + "/v1/connectors/callback/cb_"), "the URL reaches the local gateway"
    stack.drain()
    assert run_status(stack, request_id) == "running", "the run waits for the product"

    forged = post_signed(url, {"result": "done", "erased": 2, "remaining": 0}, secret=OTHER_SECRET)
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "bad_signature"
    wrong = post_signed(url[:-4] + "AAAA", {"result": "done", "erased": 2, "remaining": 0})
    assert wrong.status_code == 404 and wrong.json()["error"]["code"] == "callback_not_found"

    answer = post_signed(url, {"result": "done", "erased": 2, "remaining": 0})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"request_id": request_id, "connector_id": "product", "result": "done"}

    wait_for(lambda: run_status(stack, request_id) in ("succeeded", "parked"), "the run to end", timeout=60)
    assert run_status(stack, request_id) == "succeeded"
    again = post_signed(url, {"result": "done", "erased": 2, "remaining": 0})
    assert again.status_code == 409 and again.json()["error"]["code"] == "callback_used"

    out = tmp_path / "receipt.json"
    shown = stack.cli_json("requests", "receipt", request_id, "--out", str(out))
    assert shown["verification"]["valid"] and shown["verification"]["sealed"]
    [entry] = [e for e in shown["receipt"]["entries"] if (e["body"].get("connector") or {}).get("id") == "product"]
    assert entry["body"]["counts"]["erased"] == 2
    key = tmp_path / "key.pem"
    key.write_text(shown["public_key_pem"])
    offline = subprocess.run(
        [sys.executable, "-m", "rightsdesk_cli.receipt_verify", str(out), "--public-key", str(key)],
        capture_output=True,
        text=True,
    )
    assert offline.returncode == 0, offline.stdout + offline.stderr


def test_a_callback_that_never_comes_parks_the_run_when_the_step_times_out(stack, product, connector):
    state, _ = product
    request_id, _, url = started_and_waiting(stack, state)
    stack.run("ConnectorWorkerFunction")
    stack.drain()
    assert run_status(stack, request_id) == "running", "within the step timeout it waits"

    stack.advance_clock(STEP_TIMEOUT_SECONDS + 60)
    ran = stack.run("ConnectorWorkerFunction")
    assert ran["result"]["callbacks_timed_out"] == 1, ran
    wait_for(lambda: run_status(stack, request_id) == "parked", "the run to park", timeout=60)
    assert item(stack, request_id, "EXECUTION#")["reason"]["S"] == "callback_timeout"
    late = post_signed(url, {"result": "done", "erased": 2, "remaining": 0})
    assert late.status_code == 410 and late.json()["error"]["code"] == "callback_expired"


def test_an_access_request_gets_the_records_the_product_reports_later(stack, product, connector):
    state, _ = product
    request_id, _, url = started_and_waiting(stack, state, kind="access")
    records = [{"id": "r1", "plan": "pro"}, {"id": "r2", "plan": "team"}]
    assert post_signed(url, {"result": "done", "records": records}).status_code == 200
    wait_for(lambda: run_status(stack, request_id) in ("succeeded", "parked"), "the run to end", timeout=60)
    assert run_status(stack, request_id) == "succeeded"
    part = item(stack, request_id, "EXPORTPART#product")
    assert part is not None and json.loads(part["records"]["S"]) == records


def test_no_secret_token_or_identity_reached_the_stack_log(stack):
    log = stack.logs()
    leaked = sorted(value for value in PERSONAL | SECRETS_SEEN if value in log)
    assert not leaked


def test_every_table_and_sealing_call_of_the_callback_route_is_granted(stack, calls_path):
    from local.template import read as read_template
    from tests.integration.test_granted_calls import TEMPLATE, allowed

    template = read_template(TEMPLATE)
    calls = [json.loads(line) for line in calls_path.read_text().splitlines()]
    assert "ConnectorCallbackFunction" in {call["function"] for call in calls}
    refused = sorted(
        {
            json.dumps({k: call.get(k) for k in ("function", "service", "action", "resource", "index", "purpose")})
            for call in calls
            if call["function"] == "ConnectorCallbackFunction"
            and call["service"] in ("dynamodb", "kms")
            and call["action"] in ({"Encrypt", "Decrypt"} if call["service"] == "kms" else {call["action"]})
            and not allowed(template, call)
        }
    )
    assert not refused, "calls the template does not allow:\n" + "\n".join(refused)
