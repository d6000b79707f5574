"""The example receivers (examples/controller_receiver.py and examples/node-receiver/) as real
processes, against real deliveries from the local stack: verified, stored once per `webhook-id`
(a retry after a lost answer, a replay, a restart), processed off the request, forged and stale
deliveries refused, a secret rotation while they run, and 410.

Each receiver has a controller of its own whose webhook URL points at a tap in this process: the
tap passes every delivery on byte for byte and keeps a copy, so a test can replay exactly what
rightsdesk sent or lose the receiver's answer. The Node receiver's package is installed with
`npm ci` into a temporary copy (npm's cache under .local/); without node on this machine the Node
cases are skipped, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from tests.support.flows import Flow, wait_for
from tests.support.node import NODE_EXAMPLE, npm_env, require_node
from tests.support.stack import REPO, OwnController, RunningStack, free_port, register_controller

pytestmark = pytest.mark.integration

EXAMPLES = REPO / "examples"
LANGUAGES = ("python", "node")
SECRET_KEPT = timedelta(hours=24)  # DESIGN: every replaced secret keeps signing for 24 h


# ------------------------------------------------------------------ node and npm


@pytest.fixture(scope="module")
def node_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of examples/node-receiver with its locked package installed by `npm ci`."""
    _, npm = require_node()
    copy = tmp_path_factory.mktemp("node-receiver")
    for name in ("package.json", "package-lock.json", "receiver.js"):
        shutil.copy(NODE_EXAMPLE / name, copy / name)
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"],
        cwd=copy,
        env=npm_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return copy


# ------------------------------------------------------------------ a receiver process and the tap in front of it


class Receiver:
    """One example receiver as a process: its port, secrets file, inbox and output."""

    def __init__(self, language: str, workdir: Path, node_example: Path | None, secrets: list[str], *flags: str):
        self.language = language
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/rightsdesk"
        self.secrets_file = workdir / "secrets"
        self.output_file = workdir / "receiver.out"
        self.store = workdir / ("inbox.sqlite3" if language == "python" else "inbox")
        common = [
            "--port",
            str(self.port),
            "--store",
            str(self.store),
            "--secrets-file",
            str(self.secrets_file),
            *flags,
        ]
        if language == "python":
            self.command = [sys.executable, str(EXAMPLES / "controller_receiver.py"), *common]
            self.cwd = workdir
        else:
            assert node_example is not None
            self.command = [shutil.which("node") or "node", "receiver.js", *common]
            self.cwd = node_example
        self.process: subprocess.Popen | None = None
        self.hold(*secrets)

    def hold(self, *secrets: str) -> None:
        """The secrets the receiver verifies with, replaced in one rename (it re-reads the file)."""
        staged = self.secrets_file.with_suffix(".new")
        staged.write_text("".join(f"{secret}\n" for secret in secrets), encoding="utf-8")
        staged.replace(self.secrets_file)

    def start(self) -> None:
        env = {key: value for key, value in os.environ.items() if key != "WEBHOOK_SECRET"}
        started = self.output().count("listening on")
        with self.output_file.open("a") as sink:
            self.process = subprocess.Popen(self.command, cwd=self.cwd, env=env, stdout=sink, stderr=subprocess.STDOUT)
        wait_for(lambda: self.output().count("listening on") > started or self.process.poll() is not None, "listening")
        assert self.process.poll() is None, self.output()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.output_file.read_text(encoding="utf-8") if self.output_file.exists() else ""

    def lines(self, *fragments: str) -> list[str]:
        return [line for line in self.output().splitlines() if all(fragment in line for fragment in fragments)]

    def wait_for_line(self, *fragments: str, timeout: float = 20) -> str:
        return wait_for(lambda: self.lines(*fragments), f"{self.language}: {' '.join(fragments)}", timeout)[-1]


@dataclass
class Passed:
    """One delivery as it went through the tap: what rightsdesk sent, what the receiver answered."""

    headers: dict[str, str]
    body: bytes
    answered: int
    seconds: float

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Tap:
    """An HTTP server in this process between rightsdesk and a receiver."""

    receiver: Receiver
    passed: list[Passed] = field(default_factory=list)
    lose_answers: int = 0  # the next N answers reach the receiver but rightsdesk gets a 503
    server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        tap = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                started = time.monotonic()
                try:
                    answer = requests.post(tap.receiver.url, data=body, headers=_signed_part(headers), timeout=10)
                    status = answer.status_code
                except requests.RequestException:
                    status = 599
                tap.passed.append(Passed(headers, body, status, time.monotonic() - started))
                if tap.lose_answers:
                    tap.lose_answers -= 1
                    status = 503
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/rightsdesk"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def of(self, webhook_id: str) -> list[Passed]:
        return [p for p in self.passed if p.webhook_id == webhook_id]

    def replay(self, passed: Passed) -> int:
        """The same bytes and headers again, straight to the receiver, as an eavesdropper would."""
        return requests.post(
            self.receiver.url, data=passed.body, headers=_signed_part(passed.headers), timeout=10
        ).status_code


def _signed_part(headers: dict[str, str]) -> dict[str, str]:
    return {
        name: headers[name]
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type")
        if name in headers
    }


@dataclass
class Endpoint:
    """A controller of this module's own, its receiver and the tap its webhook URL points at."""

    language: str
    controller: OwnController
    receiver: Receiver
    tap: Tap

    @property
    def secret(self) -> str:
        assert self.controller.webhook_secret
        return self.controller.webhook_secret


def _start_endpoint(
    stack: RunningStack, language: str, workdir: Path, node_example: Path | None, *flags: str
) -> Endpoint:
    receiver = Receiver(language, workdir, node_example, [], *flags)
    tap = Tap(receiver)
    tap.start()
    controller = register_controller(stack, "webhook", "--webhook-url", tap.url, tag=f"recv-{language}")
    assert controller.webhook_secret
    receiver.hold(controller.webhook_secret)
    receiver.start()
    return Endpoint(language, controller, receiver, tap)


@pytest.fixture(params=LANGUAGES)
def language(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def node_dir(language: str, request: pytest.FixtureRequest) -> Path | None:
    """The installed Node example, asked for only by the Node cases (so only they can skip)."""
    return request.getfixturevalue("node_example") if language == "node" else None


@pytest.fixture(scope="module")
def running_endpoints() -> Iterator[dict[str, Endpoint]]:
    """The module's receivers, started by their first test, stopped when the module ends."""
    started: dict[str, Endpoint] = {}
    yield started
    for endpoint in started.values():
        endpoint.receiver.stop()
        endpoint.tap.stop()


@pytest.fixture
def endpoint(stack, language, node_dir, running_endpoints, tmp_path_factory) -> Endpoint:
    if language not in running_endpoints:
        running_endpoints[language] = _start_endpoint(stack, language, tmp_path_factory.mktemp(language), node_dir)
    return running_endpoints[language]


@pytest.fixture(autouse=True)
def wall_clock_aligned(stack: RunningStack) -> None:
    """The stack's clock at this machine's (another module's world may have left it moved; put
    back after the test): the rotation's `previous_secret_valid_until` is checked against it.
    Signatures carry the wall clock either way (`webhooks.signed_headers`)."""
    if abs(stack.clock()["offset_seconds"]) > 1:
        stack.set_clock_offset(0)


# ------------------------------------------------------------------ helpers


def forwarded_delivery(endpoint: Endpoint, request_id: str) -> str:
    """The webhook-id of the request's `dsr.request.forwarded`, once the tap saw it."""

    def seen() -> str | None:
        for passed in list(endpoint.tap.passed):
            if b"dsr.request.forwarded" in passed.body and request_id.encode() in passed.body:
                return passed.webhook_id
        return None

    return wait_for(seen, f"{endpoint.language}: the forwarded request")


def send_test_event(stack: RunningStack, endpoint: Endpoint) -> Passed:
    """POST /v1/controller/webhook/test; the delivery it made, once the tap saw it."""
    before = len(endpoint.tap.passed)
    answer = stack.post("/v1/controller/webhook/test", headers=endpoint.controller.auth)
    assert answer.status_code == 202, answer.text
    marker = f'"test_id":"{answer.json()["test_id"]}"'.encode()
    return wait_for(
        lambda: next((p for p in endpoint.tap.passed[before:] if marker in p.body), None),
        f"{endpoint.language}: the test event",
    )


def signed_by(secret: str, passed: Passed) -> bool:
    """Whether one of the delivery's signatures is `secret`'s."""
    at = datetime.fromtimestamp(int(passed.headers["webhook-timestamp"]), tz=timezone.utc)
    expected = Webhook(secret).sign(passed.webhook_id, at, passed.body)
    return expected in passed.headers["webhook-signature"].split(" ")


def processed(endpoint: Endpoint, webhook_id: str) -> list[str]:
    return [line for line in endpoint.receiver.lines(f"webhook-id={webhook_id}") if line.startswith("processed ")]


def stored(endpoint: Endpoint, webhook_id: str) -> list[str]:
    return [line for line in endpoint.receiver.lines(f"webhook-id={webhook_id}") if line.startswith("stored ")]


def new_secret() -> str:
    return "whsec_" + b64encode(os.urandom(24)).decode()


# ------------------------------------------------------------------ the tests


def test_a_forwarded_request_is_verified_stored_answered_at_once_and_processed_once(stack, endpoint):
    flow = Flow(stack, endpoint.controller.site)
    request_id = flow.submit_and_verify()["request_id"]

    webhook_id = forwarded_delivery(endpoint, request_id)
    endpoint.receiver.wait_for_line(
        "processed dsr.request.forwarded", f"webhook-id={webhook_id}", f"request={request_id}"
    )
    wait_for(lambda: flow.status(request_id) == "delivered", "delivered")

    [passed] = endpoint.tap.of(webhook_id)
    assert passed.answered == 204
    assert passed.seconds < 2.0, "the receiver stores and answers; the work happens later"
    assert len(stored(endpoint, webhook_id)) == 1 and len(processed(endpoint, webhook_id)) == 1
    assert "subject email on file: yes" in endpoint.receiver.output()


def test_a_delivery_whose_answer_was_lost_is_retried_with_its_id_and_stored_once(stack, endpoint):
    flow = Flow(stack, endpoint.controller.site)
    endpoint.tap.lose_answers = 1
    request_id = flow.submit_and_verify()["request_id"]
    webhook_id = forwarded_delivery(endpoint, request_id)
    endpoint.receiver.wait_for_line("processed dsr.request.forwarded", f"webhook-id={webhook_id}")

    stack.advance_past_retry(6)  # the first retry waits 5 s
    wait_for(lambda: len(endpoint.tap.of(webhook_id)) == 2, "the retry")
    wait_for(lambda: flow.status(request_id) == "delivered", "delivered by the retry")

    first, retry = endpoint.tap.of(webhook_id)
    assert (first.answered, retry.answered) == (204, 204)  # the receiver had it the first time
    endpoint.receiver.wait_for_line(f"duplicate webhook-id={webhook_id}")
    assert len(stored(endpoint, webhook_id)) == 1 and len(processed(endpoint, webhook_id)) == 1
    assert [t for t in flow.transitions(request_id) if t[1] == "delivered"] == [("forwarded", "delivered")]


def test_a_replayed_delivery_is_answered_but_stored_once_even_after_a_restart(stack, endpoint):
    original = send_test_event(stack, endpoint)
    webhook_id = original.webhook_id
    endpoint.receiver.wait_for_line("processed webhook.test", f"webhook-id={webhook_id}")

    assert endpoint.tap.replay(original) == 204
    endpoint.receiver.wait_for_line(f"duplicate webhook-id={webhook_id}")

    endpoint.receiver.stop()
    endpoint.receiver.start()  # the same inbox
    assert endpoint.tap.replay(original) == 204
    wait_for(lambda: len(endpoint.receiver.lines(f"duplicate webhook-id={webhook_id}")) == 2, "the second duplicate")
    assert len(stored(endpoint, webhook_id)) == 1 and len(processed(endpoint, webhook_id)) == 1


def test_an_event_stored_but_not_processed_before_a_stop_is_processed_at_the_next_start(stack, endpoint):
    genuine = send_test_event(stack, endpoint)
    endpoint.receiver.wait_for_line("processed webhook.test", f"webhook-id={genuine.webhook_id}")
    endpoint.receiver.stop()
    # What the inbox holds when the receiver stopped between its answer and its worker.
    left = f"msg_left{os.urandom(8).hex()}"
    if endpoint.language == "python":
        with sqlite3.connect(endpoint.receiver.store) as db:
            db.execute(
                "INSERT INTO events (webhook_id, type, body, received_at) VALUES (?, 'webhook.test', ?, ?)",
                (left, genuine.body.decode(), time.time()),
            )
    else:
        (endpoint.receiver.store / f"{left}.json").write_bytes(genuine.body)

    endpoint.receiver.start()

    endpoint.receiver.wait_for_line("processed webhook.test", f"webhook-id={left}")
    assert len(processed(endpoint, genuine.webhook_id)) == 1  # what was processed before is not again


def test_forged_tampered_and_stale_deliveries_are_refused_and_not_stored(stack, endpoint):
    genuine = send_test_event(stack, endpoint)
    endpoint.receiver.wait_for_line("processed webhook.test", f"webhook-id={genuine.webhook_id}")
    rejected_before = len(endpoint.receiver.lines("rejected"))
    now = datetime.now(timezone.utc)

    def post(body: bytes, msg_id: str, at: datetime, signature: str) -> int:
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature,
            "content-type": "application/json",
        }
        return requests.post(endpoint.receiver.url, data=body, headers=headers, timeout=10).status_code

    body = genuine.body
    forged_id, stale_id = f"msg_forged{os.urandom(6).hex()}", f"msg_stale{os.urandom(6).hex()}"
    forged = Webhook(new_secret()).sign(forged_id, now, body)
    # An attacker's own secret, alone or next to a genuine signature copied from another delivery.
    assert post(body, forged_id, now, forged) == 401
    assert post(body, forged_id, now, f"{genuine.headers['webhook-signature']} {forged}") == 401
    # A genuine delivery with its body changed.
    tampered = body.replace(b"webhook.test", b"webhook.tost")
    assert (
        requests.post(
            endpoint.receiver.url, data=tampered, headers=_signed_part(genuine.headers), timeout=10
        ).status_code
        == 401
    )
    # Correctly signed with the controller's secret, but more than 5 minutes old.
    stale_at = now - timedelta(minutes=6)
    assert post(body, stale_id, stale_at, Webhook(endpoint.secret).sign(stale_id, stale_at, body)) == 401

    wait_for(lambda: len(endpoint.receiver.lines("rejected")) == rejected_before + 4, "four rejections")
    assert not endpoint.receiver.lines(forged_id) and not endpoint.receiver.lines(stale_id)
    assert len(stored(endpoint, genuine.webhook_id)) == 1 and len(processed(endpoint, genuine.webhook_id)) == 1


def test_a_secret_rotation_while_the_receiver_runs(stack, endpoint):
    """Rotate; the receiver still holding the replaced secret verifies (for 24 h), then given the
    new one (its file re-read, no restart) verifies at once; after 24 h only the new one signs."""
    old = endpoint.secret
    answer = stack.post("/v1/controller/webhook/rotate", headers=endpoint.controller.auth)
    assert answer.status_code == 200, answer.text
    new = answer.json()["webhook_secret"]
    endpoint.controller.webhook_secret = new
    valid_until = datetime.fromisoformat(answer.json()["previous_secret_valid_until"].replace("Z", "+00:00"))
    assert abs((valid_until - datetime.now(timezone.utc) - SECRET_KEPT).total_seconds()) < 120

    def delivered(answered: int) -> Passed:
        passed = send_test_event(stack, endpoint)
        assert passed.answered == answered
        if answered == 204:
            endpoint.receiver.wait_for_line("processed webhook.test", f"webhook-id={passed.webhook_id}")
        return passed

    # Still holding only the replaced secret: both signatures travel, the old one verifies.
    passed = delivered(204)
    assert passed.headers["webhook-signature"].count("v1,") == 2
    assert signed_by(new, passed) and signed_by(old, passed)

    # Given the new secret while running.
    endpoint.receiver.hold(new)
    delivered(204)

    # 24 hours on, the replaced secret no longer signs: a receiver that kept only it refuses (its
    # signatures carry the wall clock, so the receiver's timestamp check still passes).
    stack.advance_clock(SECRET_KEPT.total_seconds() + 60)
    endpoint.receiver.hold(old)
    passed = delivered(401)
    assert passed.headers["webhook-signature"].count("v1,") == 1 and signed_by(new, passed)
    endpoint.receiver.hold(old, new)  # several secrets, in any order: a stale one does no harm
    delivered(204)


def test_410_from_a_retired_receiver_disables_its_endpoint_and_requests_go_by_email(
    stack, language, node_dir, tmp_path
):
    retired = _start_endpoint(stack, language, tmp_path, node_dir, "--gone")
    flow = Flow(stack, retired.controller.site)
    try:
        request = flow.submit_and_verify()
        mail = wait_for(
            lambda: [m for m in flow.mails_to(retired.controller.contact) if request["request_id"] in m["text"]],
            "the request by email",
        )[0]
        wait_for(lambda: flow.status(request["request_id"]) == "delivered", "delivered by email")
    finally:
        retired.receiver.stop()
        retired.tap.stop()

    assert [p.answered for p in retired.tap.passed] == [410]
    assert request["email"] in mail["text"]
    shown = stack.cli_json("controllers", "show", retired.controller.controller_id)["controller"]
    assert shown["webhook_disabled_reason"] == "gone_410", "disabled, its URL and secrets kept for re-enabling"
    assert not [line for line in retired.receiver.lines("webhook-id=") if line.startswith("stored ")]
