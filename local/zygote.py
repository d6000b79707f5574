"""The container side of the local run: a fork server, and the Lambda environments it forks.

The runner (local/containers.py) starts this module as its own process: `python -c "from
local.zygote import main; main(FD)"`. It imports what every function shares (the SDKs, powertools,
the template's layers) once, while it is still single-threaded, then forks one *container* per
request of the runner. A container is one Lambda execution environment: it sets its function's
environment, imports the handler's module once (its cold start) and serves invocations one at a
time over the socket the runner handed it, until the runner closes it or kills it.

Only the standard library and local.faults / local.calls are imported here before a fork: the
runner's threads, moto and the gateway never live in these processes.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import pkgutil
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from local import caller_first, calls, faults  # before a container replaces sys.path with its function's

# What most functions import: loaded once in the fork server, shared copy-on-write by every
# container (a missing one is skipped). Lazily imported parts of the layer (templates, translations)
# are here too, so a container's first request does not pay for them.
PRELOAD = (
    "boto3",
    "botocore.session",
    "botocore.client",
    "pynamodb.models",
    "aws_lambda_powertools",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.idempotency",
    "aws_lambda_powertools.utilities.parameters",
    "aws_lambda_powertools.utilities.typing",
    "jinja2",
    "babel.support",
)
MESSAGE_BYTES = 1 << 20


def main(control_fd: int) -> None:
    """The fork server: preload, then fork a container for each request until the runner hangs up."""
    control = socket.socket(fileno=control_fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the runner, which stops us
    _preload(PRELOAD, [])  # while the runner starts moto and provisions the resources
    # The layers import with the environment every function agrees on, as they did in one process:
    # some of their modules read settings at import (a table name into a model's Meta).
    setup = json.loads(control.recv(MESSAGE_BYTES) or b"{}")
    background_priority = setup.get("background_priority", "normal")
    sys.path[:] = setup.get("sys_path", sys.path)
    os.environ.clear()
    os.environ.update(setup.get("env", {}))
    _preload([], [Path(p) for p in setup.get("layers", [])])
    # What the fork server imported lives as long as every container: out of the collector's reach,
    # a container's collections no longer walk (and copy, page by page) the shared preloaded objects.
    gc.freeze()
    control.send(b'{"ready": true}')
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # containers are reaped by the kernel
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, MESSAGE_BYTES, 1)
        except OSError:
            return
        if not data:
            return  # the runner is gone: so are we (and each container sees its socket close)
        spec = json.loads(data)
        pid = os.fork()
        if pid == 0:
            control.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = 0
            try:
                serve(fds[0], spec, background_priority)
            except BaseException:  # noqa: BLE001 - a container ends here, whatever happened
                code = 1
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        control.send(json.dumps({"pid": pid}).encode())


def _preload(modules: tuple[str, ...] | list[str], layers: list[Path]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - a preload is an optimisation; the container imports for real
            continue
    for layer in layers:
        for package in pkgutil.iter_modules([str(layer)]):
            try:
                module = importlib.import_module(package.name)
                for found in pkgutil.walk_packages(getattr(module, "__path__", []), package.name + "."):
                    importlib.import_module(found.name)
            except Exception:  # noqa: BLE001, S112 - the container's own import reports real failures
                continue


# ---------------------------------------------------------------------------------------- a container
class LambdaContext:
    """The attributes of the Lambda context object that handlers and powertools read."""

    def __init__(self, spec: dict, deadline: float):
        self.function_name = spec["function_name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec["function_arn"]
        self.memory_limit_in_mb = spec["memory"]
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{spec['function_name']}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class Runner:
    """The container's line to the runner: JSON messages, one exchange at a time."""

    def __init__(self, connection: Connection):
        self.connection = connection
        # A handler may make two calls at once (rightsdesk.platform.overlap): each asks the runner
        # about faults on this one line, and a question's answer must reach the thread that asked.
        self._asking = threading.Lock()

    def send(self, message: dict) -> None:
        self.connection.send_bytes(json.dumps(message).encode())

    def receive(self) -> dict | None:
        try:
            return json.loads(self.connection.recv_bytes())
        except (EOFError, OSError):
            return None

    def ask_fault(self, service: str, operation: str) -> dict | None:
        """Whether the runner's fault rules fail this call (local/faults.py keeps the rules)."""
        with self._asking:
            self.send({"fault": [service, operation]})
            answer = self.receive()
        if answer is None:
            raise SystemExit(0)  # the runner went away mid-invocation
        return answer.get("rule")


def serve(fd: int, spec: dict, background_priority: str = "normal") -> None:
    runner = Runner(Connection(fd))
    _name_process(spec["logical_id"])
    if not spec.get("background"):
        caller_first.mark_calls()
    elif background_priority == "idle":
        _yield_the_cpu()
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)  # type: ignore[union-attr] - handler logs stay timely in a pipe
    os.environ.clear()
    os.environ.update(spec["env"])
    # Lambda puts the function's code root first on sys.path, so handlers may import siblings.
    sys.path[:] = [spec["code_dir"], *spec["sys_path"]]
    faults.install_remote(runner.ask_fault)
    if spec["env"].get("RIGHTSDESK_LOCAL_RECORD_CALLS"):  # tests/integration/test_granted_calls.py
        calls.install(spec["env"]["RIGHTSDESK_LOCAL_RECORD_CALLS"])
    module_name, _, attribute = spec["handler"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except Exception as error:  # noqa: BLE001 - any import failure leaves the function unavailable
        # Import runs no request, so the full traceback holds code, not personal data.
        runner.send({"failed": f"import failed: {type(error).__name__}", "trace": traceback.format_exc()})
        return
    set_offset = _clock_setter()
    gc.freeze()  # the cold start's modules, like the fork server's, stay out of each collection's walk
    runner.send({"ready": True, "pid": os.getpid()})
    while (message := runner.receive()) is not None:
        if set_offset is not None:
            set_offset(float(message.get("offset", 0.0)))
        faults.remote_rules(bool(message.get("faults")))
        answer = _invoke(handler, message["invoke"], spec)
        try:
            runner.send(answer)
        except (TypeError, ValueError):  # Lambda answers only what JSON can carry
            runner.send({"error": "Runtime.MarshalError", "where": "", "unauthorized": False})
        if "crash" in answer:
            return  # as a killed environment: the runner starts a fresh one when it needs one


def _yield_the_cpu() -> None:
    """A consumer no caller waits on runs only on CPU time the rest leaves (SCHED_IDLE), as in
    Lambda, where it has capacity of its own and never slows the API. Only where one stack has the
    machine (`make run`, `make load`): in a parallel test run, a niced consumer of one stack fell
    behind the other stack's API work and a test's mail came too late (docs/decisions.md, "Callers
    first"). Lowering a priority needs no privilege; where SCHED_IDLE is missing, the lowest nice."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        try:
            os.nice(19)
        except OSError:
            pass


def _name_process(logical_id: str) -> None:
    """`ps`, `top` and bench/verify_cpu.py tell the containers apart by their function (the kernel
    keeps 15 bytes of a process name: "Function" is dropped, as every logical id ends with it)."""
    try:
        Path("/proc/self/comm").write_text(logical_id.removesuffix("Function")[:15])
    except OSError:  # not Linux: the containers keep the fork server's name
        pass


def _invoke(handler: Any, event: Any, spec: dict) -> dict:
    context = LambdaContext(spec, time.monotonic() + spec["timeout"])
    with faults.running(spec["logical_id"]):
        try:
            result = handler(event, context)
        except faults.InjectedCrash as crash:
            # As a killed environment: no answer, whatever the handler had done so far stays done.
            return {"crash": str(crash)}
        except Exception as error:  # noqa: BLE001 - reported to the runner by type and place only
            return {
                "error": type(error).__name__,
                "where": _where(error, Path(spec["root"])),
                # The one message API Gateway reads from an authorizer: "Unauthorized" means 401.
                "unauthorized": str(error) == "Unauthorized",
            }
    return {"result": result}


def _clock_setter() -> Any:
    """The core's clock, which the runner's /_dev/clock moves: each invocation brings its offset."""
    try:
        from rightsdesk.kernel import clock
    except ImportError:  # a template without the core: real time
        return None
    return clock.set_offset


def _where(error: BaseException, root: Path) -> str:
    if os.environ.get("RIGHTSDESK_LOCAL_TRACEBACKS") == "1":
        # Opt-in: a traceback's messages and locals' reprs may include personal data.
        return "\n" + "".join(traceback.format_exception(error))
    ours = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if Path(frame.filename).is_relative_to(root) and "site-packages" not in frame.filename
    ]
    if not ours:
        return ""
    frame = ours[-1]
    return f" at {Path(frame.filename).relative_to(root)}:{frame.lineno} ({frame.name})"
