"""The stdlib HTTP plumbing the gateway and the webhook receiver share."""

from __future__ import annotations

import errno
import json
import logging
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("local")

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
# The runner and moto serve each connection on a thread of their own, and a request spends most of
# its time in short waits on sockets and locks. After each wait a thread needs the GIL back, and
# CPython lets another busy thread keep it for up to its switch interval (5 ms by default), once
# per wait. A millisecond keeps that from adding up across a request's many waits; the price is a
# little more switching between busy threads.
GIL_SWITCH_SECONDS = 0.001


class BodyTooLarge(Exception):
    pass


class PortInUse(Exception):
    def __init__(self, port: int, what: str, env_var: str, flag: str):
        super().__init__(
            f"port {port} ({what}) is already in use; stop whatever holds it or choose another port "
            f"with {env_var}=<port> or {flag} <port>"
        )
        self.port = port


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops connections under the benchmarks' load

    def __init__(self, host: str, port: int, app: Callable[[RequestHandler], None], *, fd: int | None = None):
        self.app = app
        if fd is None:
            super().__init__((host, port), RequestHandler)
            return
        # A listening socket another process bound (local/moto_process.py): serve it as it is.
        super().__init__((host, port), RequestHandler, bind_and_activate=False)
        self.socket.close()
        self.socket = socket.socket(fileno=fd)
        self.server_address = self.socket.getsockname()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback here, e.g. for a client that hung up; one line is enough.
        log.debug("connection from %s ended with %s", client_address[0], sys.exc_info()[0].__name__)


def bind(
    host: str, port: int, app: Callable[[RequestHandler], None], *, what: str, env_var: str, flag: str
) -> HttpServer:
    try:
        return HttpServer(host, port, app)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise PortInUse(port, what, env_var, flag) from None
        raise


class ServerThread:
    """serve_forever on a thread; stop() returns once the loop has ended and the socket is closed."""

    def __init__(self, server: HttpServer, name: str):
        self.server = server
        self.thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=name, daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(timeout=2)
        self.server.server_close()


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response carries Content-Length
    # One send per response: the status line, headers and body are buffered and leave together when
    # the request is done (handle_one_request flushes). Unbuffered, each went out in a send of its
    # own, and each send lets go of the GIL: in the moto process, under load, getting it back meant
    # waiting for another request's thread, several milliseconds per response.
    wbufsize = 64 * 1024
    # A body larger than the buffer still goes out in more than one send: with Nagle on, a
    # keep-alive client's delayed ACK would add ~40 ms to such a response.
    disable_nagle_algorithm = True
    server: HttpServer

    def handle_expect_100(self) -> bool:
        answered = super().handle_expect_100()
        self.wfile.flush()  # the interim 100 must leave now: the client holds the body back until it comes
        return answered

    def _dispatch(self) -> None:
        try:
            self.server.app(self)
        except (BodyTooLarge, ConnectionError):
            self.close_connection = True
        except Exception as error:  # noqa: BLE001 - the last line of defence: log the type only, hang up
            log.error("local server on port %s failed: %s", self.server.port, type(error).__name__)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _dispatch

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # The stdlib line carries the full path and query, which may hold tokens or addresses.
        pass

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise BodyTooLarge()
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(body)
            body += self.rfile.read(size)
            self.rfile.readline()
            if len(body) > MAX_BODY_BYTES:
                raise BodyTooLarge()

    def respond(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def respond_json(self, status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> None:
        body = json.dumps(payload, default=str, ensure_ascii=False).encode()
        self.respond(status, [("Content-Type", "application/json"), *(headers or [])], body)


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}
