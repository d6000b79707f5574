"""Containers: each function's handler runs in processes of its own, as Lambda runs environments.

The Zygote is a single-threaded fork server (local/zygote.py, its own process started from this
one, never forked from the multi-threaded runner). It imports what all functions share once; each
Container is a process forked from it that imports one function's module and serves one invocation
at a time over a socket pair. The runner keeps the state the containers share: the clock offset
and the fault rules travel with each invocation (and each call a fault might match).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from local import faults
from local.zygote import MESSAGE_BYTES

log = logging.getLogger("local")

LOCAL_ROOT = Path(__file__).resolve().parents[1]


class ContainerFailed(Exception):
    """The container could not start (its module failed to import); str() is safe to log."""

    def __init__(self, problem: str, trace: str = ""):
        super().__init__(problem)
        self.trace = trace


class InvocationFailed(Exception):
    """The invocation ended without an answer: `kind` is the error type name a FunctionError carries."""

    def __init__(
        self, kind: str, where: str = "", unauthorized: bool = False, crashed: str | None = None, unsent: bool = False
    ):
        super().__init__(kind)
        self.kind, self.where, self.unauthorized, self.crashed = kind, where, unauthorized, crashed
        self.unsent = unsent  # the container was gone before it got the event: another may take it


class Zygote:
    """The fork server process and the control socket the runner asks it for containers on."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(LOCAL_ROOT), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-c", f"from local.zygote import main; main({theirs.fileno()})"],
            pass_fds=[theirs.fileno()],
            env=env,
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self._control = ours
        self._lock = threading.Lock()
        self._ready = False

    def prepare(
        self, sys_path: list[str], layers: list[Path], env: dict[str, str], background_priority: str = "normal"
    ) -> None:
        """Import the layers with the environment every function shares; the first fork waits for it.
        `background_priority` (`normal` or `idle`: local/zygote.py, `_yield_the_cpu`) is the CPU
        priority of the containers no caller waits on."""
        setup = {"sys_path": sys_path, "layers": [str(p) for p in layers], "env": env}
        self._control.send(json.dumps({**setup, "background_priority": background_priority}).encode())

    def fork(self, spec: dict) -> Container:
        ours, theirs = socket.socketpair()
        try:
            with self._lock:
                if not self._ready:
                    self._expect("ready")
                    self._ready = True
                socket.send_fds(self._control, [json.dumps(spec).encode()], [theirs.fileno()])
                pid = int(self._expect("pid"))
        finally:
            theirs.close()
        return Container(pid, Connection(ours.detach()), spec["logical_id"])

    def _expect(self, key: str) -> Any:
        answer = self._control.recv(MESSAGE_BYTES)
        if not answer:
            raise ContainerFailed("the container fork server has stopped")
        return json.loads(answer)[key]

    def stop(self) -> None:
        self._control.close()  # the fork server ends when its control socket closes
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Container:
    """One process of one function, serving one invocation at a time."""

    def __init__(self, pid: int, connection: Connection, logical_id: str):
        self.pid = pid
        self.connection = connection
        self.logical_id = logical_id
        self.alive = True

    def wait_ready(self, timeout: float) -> None:
        """Until the module imported (its cold start); ContainerFailed if it did not."""
        if not self.connection.poll(timeout):
            self.kill()
            raise ContainerFailed(f"import took longer than {timeout:.0f} s")
        try:
            answer = json.loads(self.connection.recv_bytes())
        except (EOFError, OSError):
            self.close()
            raise ContainerFailed("the container exited while importing") from None
        if "failed" in answer:
            self.close()  # it ends itself after saying so
            raise ContainerFailed(answer["failed"], answer.get("trace", ""))

    def invoke(self, event: Any, offset: float, timeout: float) -> Any:
        """The handler's answer; InvocationFailed if it raised, crashed, timed out or died."""
        deadline = time.monotonic() + timeout
        message = json.dumps({"invoke": event, "offset": offset, "faults": faults.active()}).encode()
        try:
            self.connection.send_bytes(message)
        except OSError:
            self.close()
            raise InvocationFailed("Runtime.ExitError", unsent=True) from None
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not self.connection.poll(left):
                    # Lambda stops the environment at its Timeout; so do we.
                    self.kill()
                    raise InvocationFailed("Timeout")
                answer = json.loads(self.connection.recv_bytes())
                if "fault" in answer:
                    function_rule = faults.take(self.logical_id, *answer["fault"])
                    self.connection.send_bytes(
                        json.dumps({"rule": function_rule.view() if function_rule else None}).encode()
                    )
                    continue
                break
        except (EOFError, OSError):
            self.close()  # it exited (a handler's sys.exit, or killed): Lambda's Runtime.ExitError
            raise InvocationFailed("Runtime.ExitError") from None
        if "result" in answer:
            return answer["result"]
        if "crash" in answer:
            self.close()  # it ends itself, as a killed environment; the pool starts a fresh one
            raise InvocationFailed("InjectedCrash", crashed=answer["crash"])
        raise InvocationFailed(answer["error"], answer.get("where", ""), bool(answer.get("unauthorized")))

    def kill(self) -> None:
        self.stop()
        self.close()

    def stop(self) -> None:
        """SIGKILL only: the thread invoking it sees the socket end and hangs up itself (closing the
        socket under that thread could hand its descriptor number to another container's socket)."""
        if self.alive:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        """Hang up: a container whose socket closes ends itself (local/zygote.py)."""
        self.alive = False
        self.connection.close()
