"""docs/delivery.md's "Receive your first request in 15 minutes", run as written: every shell
block in its order, terminal 2 as one bash whose variables live on from block to block, terminal 3
(the receiver, Python or Node) as a process stopped with Ctrl-C, `make run` being the test's stack.
Only the ports and the names (site, addresses, the .local/ folder) are this test's own.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.flows import wait_for
from tests.support.node import npm_env, require_node
from tests.support.stack import CLI_ENV_LEFT_OUT, REPO, free_port

pytestmark = pytest.mark.integration

WALKTHROUGH = REPO / "docs" / "delivery.md"
WALKTHROUGH_HEADING = "## Receive your first request in 15 minutes"


def walkthrough_blocks() -> list[tuple[str, str]]:
    """The walkthrough's shell blocks in order, each with the terminal its first line names."""
    text = WALKTHROUGH.read_text(encoding="utf-8").split(WALKTHROUGH_HEADING, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    return [(block.splitlines()[0].removeprefix("# ").split(" (", 1)[0], block) for block in blocks]


class Terminal:
    """One bash, fed block after block as a person pastes them; its variables live on."""

    def __init__(self, env: dict[str, str]):
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.run("set -eo pipefail")  # a failing command ends the terminal, and the test

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.put(line)
        self.output.put(None)

    def run(self, block: str, timeout: float = 60) -> str:
        assert self.process.stdin is not None
        marker = f"__block_done_{uuid.uuid4().hex}__"
        self.process.stdin.write(f"{block}\necho {marker}\n")
        self.process.stdin.flush()
        printed: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.output.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"the block did not finish in {timeout:.0f} s:\n{block}\n{''.join(printed)}")
            if line is None:
                pytest.fail(f"the block failed:\n{block}\n{''.join(printed)}")
            if marker in line:  # after the block's last output, which may not end its line
                printed.append(line.split(marker, 1)[0])
                return "".join(printed)
            printed.append(line)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class TerminalThree:
    """The receiver's terminal: a block runs until Ctrl-C (SIGINT to its process group)."""

    def __init__(self, env: dict[str, str], output_file: Path):
        self.env = env
        self.output_file = output_file
        self.process: subprocess.Popen | None = None

    def start(self, block: str) -> None:
        self.stop()
        started = self.output().count("listening on")
        with self.output_file.open("a") as sink:
            self.process = subprocess.Popen(
                ["bash", "-eo", "pipefail", "-c", block],
                cwd=REPO,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(
            lambda: self.output().count("listening on") > started or self.process.poll() is not None,
            "the receiver to listen",
            timeout=180,  # the Node block runs npm ci first
        )
        assert self.process.poll() is None, self.output()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def output(self) -> str:
        return self.output_file.read_text(encoding="utf-8") if self.output_file.exists() else ""


@pytest.mark.parametrize("language", ["python", "node"])
def test_the_first_request_walkthrough_works_as_written(stack, language, tmp_path):
    """docs/delivery.md's walkthrough, block by block, with terminal 3 running the `language`
    receiver; `make run` is the test's stack, its ports and the walkthrough's names this test's own."""
    tag = f"myshop{uuid.uuid4().hex[:8]}"
    subject = f"ana-{uuid.uuid4().hex[:8]}@example.org"
    receiver_port = free_port()

    def as_here(block: str) -> str:
        return (
            block.replace("localhost:3000", f"127.0.0.1:{urlsplit(stack.base_url).port}")
            .replace("8080", str(receiver_port))
            .replace(".local/myshop", str(tmp_path / "walkthrough"))
            .replace("myshop", tag)
            .replace("ana@example.org", subject)
        )

    env = {**os.environ, "RIGHTSDESK_LOCAL_URL": stack.base_url, "RIGHTSDESK_LOCAL_MOTO_URL": stack.moto_url}
    for name in CLI_ENV_LEFT_OUT:
        env.pop(name, None)
    if language == "node":
        require_node()
        env = npm_env(env)  # the block runs `npm ci` in examples/node-receiver
    terminal = Terminal(env)
    receiver = TerminalThree(env, tmp_path / "terminal-3.out")
    printed: list[str] = []
    ran = {"terminal 1": 0, "terminal 2": 0, "terminal 3": 0}
    try:
        for where, block in walkthrough_blocks():
            if where == "terminal 1":
                ran[where] += 1  # `make run`: the stack fixture
            elif where == "terminal 2":
                printed.append(terminal.run(as_here(block)))
                ran[where] += 1
            elif where == f"terminal 3, {language.capitalize()}":
                stack.drain()  # a person sees what terminal 3 shows before pressing Ctrl-C there
                receiver.start(as_here(block))
                ran["terminal 3"] += 1
            else:
                assert where.startswith("terminal 3, "), f"a block for no known terminal: {where}"
    finally:
        receiver.stop()
        terminal.close()

    assert ran == {"terminal 1": 1, "terminal 2": 6, "terminal 3": 2}
    said = "".join(printed)
    first_request = re.search(r"processed dsr\.request\.forwarded webhook-id=\S+ request=(dsr_\w+)", receiver.output())
    assert first_request, receiver.output()
    assert '"status": "verified"' in said or '"status":"verified"' in said
    assert "delivered\n" in said  # step 5: requests show
    assert "secrets loaded: 2" in receiver.output()  # step 6: the rotated secret, without a restart
    assert re.search(r"processed webhook\.test webhook-id=", receiver.output())
    assert "gone_410\n" in said  # step 7: controllers show after the 410
    assert "Your webhook endpoint was disabled" in said
    assert len(re.findall(r"^stored dsr\.request\.forwarded", receiver.output(), re.M)) == 1
    assert said.rstrip().endswith("null"), "set-delivery re-enabled the endpoint"
    assert re.search(r"whsec_\S+", (tmp_path / "walkthrough" / "secrets").read_text()), "the secrets it kept"
