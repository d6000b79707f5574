"""Callers first: in moto's process, the AWS calls of a function someone waits on go before the
background functions' calls.

In AWS a queue consumer's DynamoDB calls never delay an API call's: the service serves them side by
side. moto's DynamoDB serves one request at a time (local/moto_patches.py says why), so locally a
verification's calls queued behind the deliveries, mails and stream consumers its predecessors had
set off, and its latency measured the emulator's queue rather than the product. Here a container
of a function that answers a caller (FunctionSpec.answers_a_caller) marks each of its calls, and
moto's DynamoDB turns go to marked calls first. A background call is deferred at most
MAX_DEFER_SECONDS, so however busy the API, the background keeps moving.

Only the local run marks and orders calls; nothing here exists in AWS.
"""

from __future__ import annotations

import threading
import time
from typing import Any

HEADER = "X-Rightsdesk-Local-Caller-Waits"
ENVIRON_KEY = "HTTP_" + HEADER.upper().replace("-", "_")
MAX_DEFER_SECONDS = 0.05


def mark_calls() -> None:
    """In a container of a function a caller waits on: every AWS call it makes says so."""
    from botocore.endpoint import Endpoint

    send = Endpoint._send

    def marked(self: Any, request: Any) -> Any:
        request.headers[HEADER] = "1"  # after signing: not part of the signature, and moto checks none
        return send(self, request)

    Endpoint._send = marked


class Turns:
    """One request at a time, marked ones first; an unmarked one waits at most MAX_DEFER_SECONDS
    for the marked ones, then takes the next free turn like any other."""

    def __init__(self, max_defer_seconds: float = MAX_DEFER_SECONDS) -> None:
        self.max_defer_seconds = max_defer_seconds
        self._changed = threading.Condition()
        self._busy = False
        self._callers_waiting = 0
        self._others_waiting = 0

    def waiting(self) -> tuple[int, int]:
        """How many marked and unmarked requests wait for a turn now."""
        with self._changed:
            return self._callers_waiting, self._others_waiting

    def take(self, caller_waits: bool) -> None:
        with self._changed:
            if caller_waits:
                self._callers_waiting += 1
                self._changed.wait_for(lambda: not self._busy)
                self._callers_waiting -= 1
            else:
                self._others_waiting += 1
                deferred_until = time.monotonic() + self.max_defer_seconds
                self._changed.wait_for(
                    lambda: not self._busy and (not self._callers_waiting or time.monotonic() >= deferred_until),
                    timeout=self.max_defer_seconds,
                )
                self._changed.wait_for(lambda: not self._busy)
                self._others_waiting -= 1
            self._busy = True

    def give_back(self) -> None:
        with self._changed:
            self._busy = False
            self._changed.notify_all()
