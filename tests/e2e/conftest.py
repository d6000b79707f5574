"""The browser tests' world: the local stack as a subprocess on free ports, and Debian's Chromium.

Playwright never downloads a browser here; it drives /usr/bin/chromium (scripts/ensure-chromium.sh).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("RIGHTSDESK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # we run as root in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT = float(os.environ.get("RIGHTSDESK_E2E_START_TIMEOUT", "90"))
MAIL_TIMEOUT = 20.0
POLL = 0.1


def _free_ports(count: int) -> list[int]:
    # Hold every socket until all are chosen so the same port is never handed out twice.
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines))
    except OSError:
        return "(no output)"


class Stack:
    """The running local stack, seen from outside: its URL, its outbox."""

    def __init__(self, base_url: str, log: Path):
        self.base_url = base_url
        self.log = log

    def get_json(self, path: str, timeout: float = 5.0):
        with urllib.request.urlopen(self.base_url + path, timeout=timeout) as response:
            return json.loads(response.read())

    def outbox(self) -> list[dict]:
        return self.get_json("/_dev/outbox")

    def mail_to(self, address: str) -> list[dict]:
        def recipients(message: dict) -> list[str]:
            to = message.get("to") or []
            return [to] if isinstance(to, str) else list(to)

        return [m for m in self.outbox() if address.lower() in (r.lower() for r in recipients(m))]

    def wait_for_code(self, address: str, timeout: float = MAIL_TIMEOUT) -> str:
        """The 6-digit code mailed to `address`; polls the outbox until it arrives or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.mail_to(address):
                found = re.search(r"^\s+(\d{6})\s*$", message.get("text") or "", re.MULTILINE)
                if found:
                    return found.group(1)
            if time.monotonic() > deadline:
                raise AssertionError(f"no code mailed to {address} within {timeout}s; outbox: {self.outbox()}")
            time.sleep(POLL)


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    existing = os.environ.get("RIGHTSDESK_E2E_BASE_URL")
    if existing:  # e.g. a `make run` already up: faster while working on the pages
        yield Stack(existing.rstrip("/"), Path("/dev/null"))
        return
    port, moto_port, receiver_port = _free_ports(3)
    log = tmp_path_factory.mktemp("local-stack") / "local.log"
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
    ]
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, env={**os.environ})
    running = Stack(f"http://127.0.0.1:{port}", log)
    try:
        _wait_until_healthy(process, running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_healthy(process: subprocess.Popen, stack: Stack) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"`python -m local` exited with {process.returncode}:\n{_tail(stack.log)}")
        try:
            health = stack.get_json("/_dev/health", timeout=2)
        except (OSError, ValueError):  # not listening yet, or half started
            health = None
        if health and health.get("ok"):
            unavailable = (health.get("functions") or {}).get("unavailable") or {}
            needed = {"PublicApiFunction", "NotifierFunction"} & set(unavailable)
            if needed:
                pytest.fail(f"the local stack is up without {sorted(needed)}: {unavailable}")
            demo = (health.get("demo") or {}).get("status", "")
            if demo not in ("registered", "already registered"):
                pytest.fail(f"the demo controller is not available: {demo!r}")
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the local stack was not healthy within {START_TIMEOUT}s:\n{_tail(stack.log)}")
        time.sleep(POLL)


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (never `playwright install`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def phone(browser):
    """A fresh phone-sized page (375 x 800) with JavaScript on."""
    context = browser.new_context(viewport={"width": 375, "height": 800})
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()
