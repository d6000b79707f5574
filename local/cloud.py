"""moto in server mode, in this process, and the fake AWS environment that points every SDK at it."""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading

from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.server import ThreadedMotoServer
from rightsdesk.platform.local_endpoints import MOTO
from werkzeug.serving import make_server

from local.servers import PortInUse

REGION = "eu-central-1"
ACCOUNT_ID = DEFAULT_ACCOUNT_ID


def fake_aws_environment(endpoint: str) -> None:
    """Credentials that can only ever reach moto: boto3, pynamodb and powertools all read these."""
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_")] + ["AWS_PROFILE", "AWS_DEFAULT_PROFILE"]:
        os.environ.pop(name, None)  # a profile or a per-service endpoint would route around moto
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_SECURITY_TOKEN="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        AWS_ENDPOINT_URL=endpoint,
    )


def follow_injected_clock() -> None:
    """Let moto's SQS tell time by the clock the handlers read (rightsdesk.kernel.clock).

    Webhook retries wait on visibility timeouts. Tests move the injected clock (POST /_dev/clock)
    instead of sleeping, so a message hidden for 5 minutes must show again once the clock has
    moved 5 minutes. moto.sqs.models imported its time functions by name; those names are replaced.
    """
    from moto.sqs import models as sqs

    if getattr(sqs, "_follows_injected_clock", False):
        return
    wall_clock = sqs.unix_time

    def unix_time(dt=None) -> float:
        return wall_clock(dt) + (_clock_offset() if dt is None else 0.0)

    sqs.unix_time = unix_time
    sqs.unix_time_millis = lambda dt=None: unix_time(dt) * 1000.0
    sqs.SQSBackend.change_message_visibility = _change_message_visibility
    sqs._follows_injected_clock = True



def stop_instance_tracking() -> None:
    """Keep moto from holding on to every model object it ever made.

    moto lists each instance for its dashboard (/moto-api), and a DynamoDB transaction deep-copies
    the table once per item for its rollback: each copy would stay alive, so memory grew with the
    square of the writes (about 5 GB after 100 requests were routed). Nothing here uses the dashboard.
    """
    from moto.core.common_models import BaseModel
    from moto.core.model_instances import reset_model_data

    def untracked(cls, *args, **kwargs):
        return object.__new__(cls)

    BaseModel.__new__ = staticmethod(untracked)  # type: ignore[method-assign]
    reset_model_data()

def _clock_offset() -> float:
    try:
        from rightsdesk.kernel import clock
    except ImportError:  # a template without the core: real time
        return 0.0
    return clock.offset_seconds()


def _change_message_visibility(self, queue_name: str, receipt_handle: str, visibility_timeout: int) -> None:
    """moto's, except for the 12-hour limit: AWS counts it from the receive, moto from the first send,
    which refuses every retry of a message older than 12 hours (the retry schedule runs ~78 hours)."""
    from moto.sqs.exceptions import InvalidParameterValue, ReceiptHandleIsInvalid

    if not 0 <= int(visibility_timeout) <= 43200:
        raise InvalidParameterValue(f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid.")
    queue = self.get_queue(queue_name)
    for message in queue._messages:
        if message.had_receipt_handle(receipt_handle):
            message.change_visibility(visibility_timeout)
            if message.visible and message in queue.pending_messages:
                queue.pending_messages.remove(message)
            return
    raise ReceiptHandleIsInvalid


class _OneDynamoDBRequestAtATime:
    """moto's DynamoDB backend is not thread-safe: a transaction deep-copies the table while another
    thread (a stream consumer, a poller's handler) writes to it, and fails with "dictionary changed
    size during iteration". DynamoDB (and Streams) requests take turns; the others, SQS long polls
    included, stay parallel."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            return self.app(environ, start_response)
        with self.lock:
            return self.app(environ, start_response)


class MotoServer(ThreadedMotoServer):
    """ThreadedMotoServer on a socket bound up front.

    The base class binds inside its thread, where werkzeug answers a busy port with sys.exit and
    start() then waits forever. Binding here turns a busy port into PortInUse.
    """

    def __init__(self, host: str, port: int):
        super().__init__(ip_address=host, port=port, verbose=False)
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
        # Every moto request would otherwise print an access line to stderr.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    def _server_entry(self) -> None:
        app = _OneDynamoDBRequestAtATime(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address,
            self._port,
            app,
            threaded=True,
            request_handler=MotoRequestHandler,
            fd=self._socket.fileno(),
        )
        self._socket.close()  # werkzeug holds its own duplicate of the descriptor
        self._server_ready_event.set()
        self._server.serve_forever(poll_interval=0.1)

    @property
    def url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    def close_unstarted(self) -> None:
        if self._server is None:
            self._socket.close()
