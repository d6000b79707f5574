"""moto in a process of its own, so that the emulator and the runner (gateway, pollers, containers'
bookkeeping) do not take turns on one GIL.

The runner binds moto's port itself (a busy port is PortInUse at once, before anything starts) and
hands the listening socket to `python -m local.moto_process`, which serves it with every patch of
local/moto_patches.py installed, DynamoDB requests taking turns as before (the transaction patch's
check-then-write relies on it). What the runner needs from inside moto comes over three control
routes under `/_local/`, never reachable through AWS's own paths:

  GET    /_local/outbox?account=..&region=..   the mails SES "sent" (local/outbox.py reads them)
  DELETE /_local/outbox?account=..&region=..   forget them
  POST   /_local/clock {"offset_seconds": N}   the injected clock SQS visibility timeouts follow

The child ends when the runner does, even a runner killed with SIGKILL: it watches its stdin, a
pipe only the runner holds, and leaves on end of file.
"""

from __future__ import annotations

import argparse
import errno
import gc
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from local.servers import GIL_SWITCH_SECONDS, HttpServer, PortInUse, RequestHandler
from rightsdesk.platform.local_endpoints import MOTO

ROOT = Path(__file__).resolve().parent.parent
CONTROL_PREFIX = "/_local/"
START_SECONDS = 60


class MotoProcess:
    """The runner's handle on moto's process: bind now, start(), url, control calls, shut()."""

    def __init__(self, host: str, port: int):
        self.host = host
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
            self._socket.listen(128)
        except OSError as error:
            self._socket.close()
            if error.errno == errno.EADDRINUSE:
                raise PortInUse(port, MOTO.what, MOTO.variable, MOTO.flag) from None
            raise
        self.port = self._socket.getsockname()[1]
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        fd = self._socket.fileno()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "local.moto_process", "--fd", str(fd)],
            pass_fds=(fd,),
            stdin=subprocess.PIPE,
            cwd=ROOT,
            # Step Functions' service integrations (sqs:sendMessage.waitForTaskToken) call moto
            # itself at localhost:$MOTO_PORT.
            env={**os.environ, "MOTO_PORT": str(self.port)},
        )
        self._socket.close()  # the child holds its own copy of the listening socket
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                self._control("GET", "ready", timeout=2)
                return
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.shut()
                    raise RuntimeError("moto's process did not start (see the lines above)") from None
                time.sleep(0.05)

    def shut(self) -> None:
        """Stop a started process, or release the socket of one that never started."""
        if self._process is None:
            self._socket.close()
            return
        process, self._process = self._process, None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdin is not None:
            process.stdin.close()

    # ------------------------------------------------------------------ control routes
    def set_clock_offset(self, seconds: float) -> None:
        self._control("POST", "clock", {"offset_seconds": seconds})

    def outbox(self, account_id: str, region: str) -> list[dict]:
        return self._control("GET", "outbox", query={"account": account_id, "region": region})

    def clear_outbox(self, account_id: str, region: str) -> None:
        self._control("DELETE", "outbox", query={"account": account_id, "region": region})

    def _control(self, method: str, name: str, body: Any = None, query: dict | None = None, timeout: float = 30) -> Any:
        url = f"{self.url}{CONTROL_PREFIX}{name}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.loads(answer.read() or b"null")


# ---------------------------------------------------------------------------------------- the child
class ControlRoutes:
    """The `/_local/` routes in front of moto's own application."""

    def __init__(self, app: Any):
        self.app = app

    def __call__(self, environ: dict, start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(CONTROL_PREFIX):
            return self.app(environ, start_response)
        from local import outbox
        from rightsdesk.kernel import clock

        method, name = environ["REQUEST_METHOD"], path[len(CONTROL_PREFIX) :]
        query = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
        status, answer = "200 OK", None
        if (method, name) == ("GET", "ready"):
            answer = {"ready": True}
        elif (method, name) == ("POST", "clock"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            clock.set_offset(float(json.loads(environ["wsgi.input"].read(length))["offset_seconds"]))
            answer = {"offset_seconds": clock.offset_seconds()}
        elif (method, name) == ("GET", "outbox"):
            answer = outbox.messages(query["account"], query["region"])
        elif (method, name) == ("DELETE", "outbox"):
            outbox.clear(query["account"], query["region"])
        else:
            status, answer = "404 Not Found", {"error": f"no control route {method} {name}"}
        payload = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]


class WsgiOverKeepAlive:
    """moto's WSGI application behind local/servers.py's keep-alive server.

    Why not werkzeug's server, which moto ships with: it answers every request with
    `Connection: close`, so each AWS call the handlers made opened a TCP connection and moto started
    a thread for it. The SDKs send every body with a Content-Length, so a connection can be kept.
    """

    def __init__(self, app: Any, port: int):
        self.app = app
        self.port = str(port)

    def __call__(self, request: RequestHandler) -> None:
        path, _, query = request.path.partition("?")
        body = request.read_body()
        environ = {
            "REQUEST_METHOD": request.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote(path, encoding="latin-1"),
            "QUERY_STRING": query,
            "REQUEST_URI": request.path,
            "RAW_URI": request.path,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": self.port,
            "SERVER_PROTOCOL": request.request_version,
            "REMOTE_ADDR": request.client_address[0],
            "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in request.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer["status"], answer["headers"] = int(status.split(" ", 1)[0]), headers
            return lambda data: answer.setdefault("written", []).append(data)

        chunks = self.app(environ, start_response)
        try:
            payload = b"".join([*answer.get("written", []), *chunks])
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        request.respond(answer["status"], answer["headers"], payload)


def freeze_after_full_collection(phase: str, info: dict[str, int]) -> None:
    """moto keeps every item, queue message and stream record as Python objects, and each full
    collection walked all of them again: up to 180 ms a pause, half of moto's collecting in the
    peer load. What survives a full collection is moto's state; frozen, it is left out of later
    collections. Reference counting still frees an item a delete drops; a reference cycle among
    frozen objects is never collected, a leak bounded by what was garbage at each freeze (the
    local run's memory is measured by `make load`)."""
    if phase == "stop" and info.get("generation") == 2:
        gc.freeze()


def _leave_with_the_runner() -> None:
    def watch() -> None:
        try:  # os.read, not sys.stdin: a daemon thread inside a buffered read aborts interpreter shutdown
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        os._exit(0)

    threading.Thread(target=watch, name="runner-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.moto_process")
    parser.add_argument("--fd", type=int, required=True, help="the listening socket the runner bound")
    args = parser.parse_args(argv)
    _leave_with_the_runner()
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    gc.callbacks.append(freeze_after_full_collection)
    from local import moto_patches, outbox

    moto_patches.install(remember_mail=outbox.remember)
    listening = socket.socket(fileno=args.fd)
    host, port = listening.getsockname()[:2]
    listening.detach()  # the server below takes the descriptor over
    server = HttpServer(host, port, WsgiOverKeepAlive(ControlRoutes(moto_patches.moto_application()), port), fd=args.fd)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the runner stops us
    server.serve_forever(poll_interval=0.1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
