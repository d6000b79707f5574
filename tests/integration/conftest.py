"""The local runner as a subprocess, shared by the integration tests.

`stack` runs `python -m local` on the repo's template.yaml (free ports, no schedule timers) for the
whole session; `launch_stack` starts more, e.g. on a fixture template. Each writes stdout and
stderr to a log file, so tests can assert that no personal data reached a log line.
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
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
import requests

from local import loopback

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
SCRIPT = REPO / ".venv" / "bin" / "rightsdesk"
CLI = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "rightsdesk_cli"]
# Nothing from the developer's shell (or a handler's settings) may point the CLI at another stack.
CLI_ENV_LEFT_OUT = ("AWS_ENDPOINT_URL", "AWS_PROFILE", "RIGHTSDESK_TABLE", "RIGHTSDESK_STACK", "RIGHTSDESK_DEBUG",
                    "MAIL_QUEUE_URL", "DELIVERY_QUEUE_URL", "HASH_KEY_SECRET_ARN", "DATA_KEY_ID", "RIGHTSDESK_HASH_KEY")
REGION = "eu-central-1"
START_DEADLINE_SECONDS = 60
STOP_DEADLINE_SECONDS = 10


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
        env = {**os.environ, "RIGHTSDESK_LOCAL_MOTO_URL": self.moto_url, "RIGHTSDESK_LOCAL_URL": self.base_url,
               "COLUMNS": "200"}
        for name in CLI_ENV_LEFT_OUT:
            env.pop(name, None)
        result = subprocess.run([*CLI, "--local", *args], capture_output=True, text=True, timeout=120, env=env,
                                cwd=REPO, check=False)
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
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return all(int(value) == 0 for value in counts.values())

    # ------------------------------------------------------------------ lifecycle
    def wait_healthy(self, deadline_seconds: float = START_DEADLINE_SECONDS) -> dict:
        deadline = time.monotonic() + deadline_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
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

    def wait_for_mail(self, to: str, timeout: float = 15) -> dict:
        """The newest email to that address; waits for the mail queue's poller to send it."""
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
        return self._ok(self.post("/_dev/clock", json={"advance_seconds": seconds}))

    def advance_past_retry(self, seconds: float) -> dict:
        """After a worker logged a failed attempt: let it finish setting the message's retry delay
        (a worker logs the failure first), then move the clock `seconds`. Moving it first would make
        the delay count from the moved clock, and the retry would never come (seen under CI load)."""
        self.drain()
        return self.advance_clock(seconds)

    def set_clock_offset(self, seconds: float) -> dict:
        return self._ok(self.post("/_dev/clock", json={"offset_seconds": seconds}))

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


def start_stack(log_dir: Path, *args: str, env: dict[str, str] | None = None,
                production_limits: bool = False) -> RunningStack:
    """A local stack. Every test calls from 127.0.0.1 and reuses addresses, so the abuse limits are
    raised through parameter overrides (local/loopback.py), unless `production_limits` (the
    template's defaults, as a deployment without overrides has them) or the stack runs a fixture
    template of its own (`--template`), which has no such parameters."""
    port, moto_port, receiver_port = free_port(), free_port(), free_port()
    log_path = log_dir / f"local-{port}.log"
    command = [
        str(PYTHON if PYTHON.exists() else sys.executable),
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
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    running = RunningStack(process, log_path, port, moto_port, receiver_port)
    running.wait_healthy()
    return running


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory):
    """The repo's template.yaml, running locally for the whole session."""
    running = start_stack(tmp_path_factory.mktemp("local-stack"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def launch_stack(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., RunningStack]:
    """Start another local stack (`launch_stack("--template", path)`); stopped at the end of the session."""
    started: list[RunningStack] = []

    def launch(*args: str, env: dict[str, str] | None = None, production_limits: bool = False) -> RunningStack:
        running = start_stack(tmp_path_factory.mktemp("local-stack"), *args, env=env,
                              production_limits=production_limits)
        started.append(running)
        return running

    yield launch
    for running in started:
        running.stop()


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


@pytest.fixture(scope="session")
def boto_session(stack: RunningStack) -> MotoSession:
    return MotoSession(stack.moto_url)


@pytest.fixture(scope="session")
def table(boto_session: MotoSession) -> Any:
    """The RightsTable (physical names are `rightsdesk-local-<LogicalId>`); scanning it in tests is fine."""
    return boto_session.resource("dynamodb").Table("rightsdesk-local-RightsTable")
