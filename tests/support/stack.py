"""The local runner as a subprocess (`python -m local`), for the integration tests, and what a test
needs to own its data on a shared stack: a controller and site of its own, and its clock moves
undone when it ends.

A stack writes stdout and stderr to a log file, so tests can assert that no personal data reached
a log line. tests/integration/conftest.py holds the fixtures; this module holds the machinery, so
a test module that starts a stack of its own imports the same classes (one registry of stacks).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from local import loopback

REPO = Path(__file__).resolve().parents[2]
# The interpreter running the tests, whatever venv it lives in, and the CLI installed next to it.
PYTHON = Path(sys.executable)
SCRIPT = PYTHON.parent / "rightsdesk"
CLI = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "rightsdesk_cli"]
# Nothing from the developer's shell (or a handler's settings) may point the CLI at another stack.
CLI_ENV_LEFT_OUT = (
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "RIGHTSDESK_TABLE",
    "RIGHTSDESK_STACK",
    "RIGHTSDESK_DEBUG",
    "MAIL_QUEUE_URL",
    "DELIVERY_QUEUE_URL",
    "HASH_KEY_SECRET_ARN",
    "DATA_KEY_ID",
    "RIGHTSDESK_HASH_KEY",
)
REGION = "eu-central-1"
START_DEADLINE_SECONDS = 60


def _runner_environment() -> dict[str, str]:
    """This process's environment without what a test process sets for in-process code (the unit
    tests' conftest sets a hash key and limits): the runner takes its settings from the template
    and its own stack, as `make run` does, or the CLI (which reads the stack's secret) and the
    functions would disagree on every keyed hash."""
    return {
        name: value
        for name, value in os.environ.items()
        if name not in CLI_ENV_LEFT_OUT and not name.startswith("LIMIT_")
    }


STOP_DEADLINE_SECONDS = 10
PORT_TAKEN_EXIT_CODE = 2  # local/__main__.py: a port in use (or a bad template, which the last attempt reports)
PORT_ATTEMPTS = 3


# Stacks started in this process; the clock fixture undoes each test's clock moves on every one.
LIVE_STACKS: list[RunningStack] = []
_clock_watch = {"on": False}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RunningStack:
    """A `python -m local` process and helpers for its HTTP and dev routes."""

    def __init__(self, process: subprocess.Popen, log_path: Path, port: int, moto_port: int, receiver_port: int):
        self.process = process
        self.log_path = log_path
        self.base_url = f"http://127.0.0.1:{port}"
        self.moto_url = f"http://127.0.0.1:{moto_port}"
        self.receiver_url = f"http://127.0.0.1:{receiver_port}"
        self.http = requests.Session()
        self._moto: MotoSession | None = None
        self._clock_before: float | None = None  # the offset a running test found, once it moved it
        # A module whose tests are one story on a stack of its own, the clock only running forward
        # from test to test, sets this False: its stack (and clock) ends with the module.
        self.restore_clock_after_each_test = True
        LIVE_STACKS.append(self)

    # ------------------------------------------------------------------ moto
    def client(self, service: str) -> Any:
        """A boto3 client of this stack's moto."""
        if self._moto is None:
            self._moto = MotoSession(self.moto_url)
        return self._moto.client(service)

    # ------------------------------------------------------------------ the operator's CLI
    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """`rightsdesk --local ARGS` against this stack (as an operator's shell runs it); `check`
        asserts that it exited 0."""
        env = {
            **os.environ,
            "RIGHTSDESK_LOCAL_MOTO_URL": self.moto_url,
            "RIGHTSDESK_LOCAL_URL": self.base_url,
            "COLUMNS": "200",
        }
        for name in CLI_ENV_LEFT_OUT:
            env.pop(name, None)
        result = subprocess.run(
            [*CLI, "--local", *args], capture_output=True, text=True, timeout=120, env=env, cwd=REPO, check=False
        )
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def cli_json(self, *args: str) -> Any:
        """`rightsdesk --local ARGS --json`, exited 0, its answer parsed."""
        return json.loads(self.cli(*args, "--json").stdout)

    def queue_empty(self, logical_id: str) -> bool:
        """Nothing left on the template's queue `logical_id`, visible or in flight."""
        sqs = self.client("sqs")
        url = sqs.get_queue_url(QueueName=f"rightsdesk-local-{logical_id}")["QueueUrl"]
        counts = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return all(int(value) == 0 for value in counts.values())

    # ------------------------------------------------------------------ lifecycle
    def wait_healthy(
        self, deadline_seconds: float = START_DEADLINE_SECONDS, port_taken_ok: bool = False
    ) -> dict | None:
        """The health answer once healthy. With `port_taken_ok`, None if the runner gave up because a
        port it was given is taken (exit code 2): between free_port() and the runner's bind, another
        worker's stack may have got it."""
        deadline = time.monotonic() + deadline_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if port_taken_ok and self.process.returncode == PORT_TAKEN_EXIT_CODE:
                    self.stop()
                    return None
                pytest.fail(
                    f"the local stack exited with {self.process.returncode} before it was healthy:\n{self.tail()}"
                )
            try:
                response = self.http.get(f"{self.base_url}/_dev/health", timeout=1)
                if response.status_code == 200:
                    return response.json()
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"the local stack was not healthy within {deadline_seconds:.0f} s:\n{self.tail()}")

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=STOP_DEADLINE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.http.close()
        if self in LIVE_STACKS:
            LIVE_STACKS.remove(self)
        return self.process.returncode

    # ------------------------------------------------------------------ logs
    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.logs().splitlines()[-lines:])

    @property
    def demo_api_key(self) -> str | None:
        match = re.search(r"API key (\S+)", self.logs())
        return match.group(1) if match else None

    # ------------------------------------------------------------------ dev routes
    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.base_url + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.post(self.base_url + path, timeout=30, **kwargs)

    def health(self) -> dict:
        return self._ok(self.get("/_dev/health"))

    def outbox(self) -> list[dict]:
        return self._ok(self.get("/_dev/outbox"))

    def clear_outbox(self) -> None:
        self._ok(self.http.delete(f"{self.base_url}/_dev/outbox", timeout=10))

    def wait_for_mail(self, to: str, timeout: float = 30) -> dict:
        """The newest email to that address; waits for the mail queue's poller to send it (a deadline
        only a failure reaches: under -n on a loaded machine 15 s was seen to run out)."""
        deadline = time.monotonic() + timeout
        while True:
            mails = [mail for mail in self.outbox() if to in mail["to"]]
            if mails:
                return mails[-1]
            if time.monotonic() > deadline:
                pytest.fail(f"no email to that address within {timeout:.0f} s")
            time.sleep(0.1)

    def clock(self) -> dict:
        return self._ok(self.get("/_dev/clock"))

    def drain(self) -> None:
        """Return once every queue and stream poller has handed on what was visible when called."""
        self._ok(self.post("/_dev/drain"))

    def advance_clock(self, seconds: float) -> dict:
        self._remember_clock()
        return self._ok(self.post("/_dev/clock", json={"advance_seconds": seconds}))

    def advance_past_retry(self, seconds: float) -> dict:
        """After a worker logged a failed attempt: let it finish setting the message's retry delay
        (a worker logs the failure first), then move the clock `seconds`. Moving it first would make
        the delay count from the moved clock, and the retry would never come (seen under CI load)."""
        self.drain()
        return self.advance_clock(seconds)

    def set_clock_offset(self, seconds: float) -> dict:
        self._remember_clock()
        return self._ok(self.post("/_dev/clock", json={"offset_seconds": seconds}))

    def _remember_clock(self) -> None:
        """Before a test's first clock move: note where the clock was, for `restore_clock`. Moves
        made while no test runs (a module fixture building its world) are the fixture's own."""
        if _clock_watch["on"] and self.restore_clock_after_each_test and self._clock_before is None:
            self._clock_before = self.clock()["offset_seconds"]

    def restore_clock(self) -> None:
        """The clock back where the running test found it, if the test moved it."""
        before, self._clock_before = self._clock_before, None
        if before is not None and self.process.poll() is None:
            self._ok(self.post("/_dev/clock", json={"offset_seconds": before}))

    def run(self, function_id: str, event: Any = None) -> dict:
        """Run a function now (a scheduled event unless `event` is given); its answer's JSON."""
        body = {"event": event} if event is not None else None
        return self._ok(self.post(f"/_dev/run/{function_id}", json=body))

    def webhooks(self) -> list[dict]:
        return self._ok(self.get("/_dev/webhooks"))

    @staticmethod
    def _ok(response: requests.Response) -> Any:
        assert response.status_code == 200, (
            f"{response.request.method} {response.url}: {response.status_code} {response.text}"
        )
        return response.json()


def start_stack(
    log_dir: Path, *args: str, env: dict[str, str] | None = None, production_limits: bool = False
) -> RunningStack:
    """A local stack. Every test calls from 127.0.0.1 and reuses addresses, so the abuse limits are
    raised through parameter overrides (local/loopback.py), unless `production_limits` (the
    template's defaults, as a deployment without overrides has them) or the stack runs a fixture
    template of its own (`--template`), which has no such parameters."""
    for attempt in range(PORT_ATTEMPTS):
        running = _start(log_dir, args, env, production_limits)
        if running.wait_healthy(port_taken_ok=attempt < PORT_ATTEMPTS - 1) is not None:
            return running
    raise AssertionError("unreachable: the last attempt fails the test itself")


def _start(log_dir: Path, args: tuple[str, ...], env: dict[str, str] | None, production_limits: bool) -> RunningStack:
    port, moto_port, receiver_port = free_port(), free_port(), free_port()
    log_path = log_dir / f"local-{port}.log"
    command = [
        sys.executable,
        "-m",
        "local",
        "--port",
        str(port),
        "--moto-port",
        str(moto_port),
        "--receiver-port",
        str(receiver_port),
        "--no-schedules",
        # A fixture template (--template) has no Limit* parameters to raise.
        *([] if production_limits or "--template" in args else loopback.parameter_overrides()),
        *args,
    ]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**_runner_environment(), "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    return RunningStack(process, log_path, port, moto_port, receiver_port)


class MotoSession(boto3.session.Session):
    """A boto3 session whose clients and resources talk to the stack's moto."""

    def __init__(self, endpoint_url: str):
        super().__init__(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
        self.endpoint_url = endpoint_url

    def client(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("endpoint_url", self.endpoint_url)
        return super().client(*args, **kwargs)

    def resource(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("endpoint_url", self.endpoint_url)
        return super().resource(*args, **kwargs)


def watch_clocks(on: bool) -> None:
    """While on, every stack remembers the offset a test found before its first clock move."""
    _clock_watch["on"] = on


def restore_clocks() -> None:
    for running in list(LIVE_STACKS):
        running.restore_clock()


# ------------------------------------------------------------------ a test's own controller


@dataclass
class OwnController:
    """A controller registered for one test, with a site key no other test uses."""

    controller_id: str
    site: str
    contact: str
    api_key: str
    webhook_secret: str | None = None
    webhook_path: str | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}


def add_with_cli(stack: RunningStack, site: str, contact: str, delivery: str, *options: str) -> dict:
    """`rightsdesk --local controllers add` for shop `site`: the CLI's answer (the key and secret shown once)."""
    return stack.cli_json(
        "controllers",
        "add",
        "--name",
        f"Shop {site}",
        "--site",
        site,
        "--contact",
        contact,
        "--delivery",
        delivery,
        *options,
    )


def register_controller(
    stack: RunningStack, delivery: str = "webhook", *options: str, tag: str = "shop"
) -> OwnController:
    """`rightsdesk --local controllers add` for a new site, as an operator registers one. A webhook
    controller gets a path of its own on the stack's receiver, which verifies its signatures with
    its own secret; `deliveries_to` lists what reached it."""
    site = f"{tag}-{uuid.uuid4().hex[:10]}"
    contact = f"dpo@{site}.example"
    path = f"/webhooks/{site}" if delivery == "webhook" and "--webhook-url" not in options else None
    hook = ["--webhook-url", f"{stack.receiver_url}{path}"] if path else []
    created = add_with_cli(stack, site, contact, delivery, *hook, *options)
    secret = created.get("webhook_secret")
    if path and secret:
        stack._ok(stack.post("/_dev/webhooks", json={"secret": secret, "path": path}))
    return OwnController(created["controller"]["controller_id"], site, contact, created["api_key"], secret, path)


def deliveries_to(stack: RunningStack, controller: OwnController, event_type: str | None = None) -> list[dict]:
    """What the receiver got on that controller's own path (of that event type)."""
    return [
        d
        for d in stack.webhooks()
        if d["path"] == controller.webhook_path
        and isinstance(d["body"], dict)
        and (event_type is None or d["body"].get("type") == event_type)
    ]
