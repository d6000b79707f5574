"""A controller's webhook endpoint, for the demo controller: records deliveries for /_dev/webhooks.

Signatures are checked with the `standardwebhooks` library once a secret is known (the runner
hands over the demo controller's secret when it registers it; POST /_dev/webhooks {"secret"} or
RIGHTSDESK_LOCAL_WEBHOOK_SECRET set another); until then deliveries are accepted unverified.
POST /_dev/webhooks {"secret", "path": "/webhooks/<site>"} gives one path a secret of its own, so
a test's own webhook controller can share the receiver with the demo controller. A
badly signed delivery is answered 401. POST /_dev/webhooks {"fail": {"status": 500, "times": 3}}
makes the next three answers 500 (or 410, ...), to exercise retries. Deliveries are never
logged: they carry subject data.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any

from local.servers import RequestHandler

log = logging.getLogger("local")

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class WebhookReceiver:
    def __init__(self) -> None:
        self.deliveries: list[dict] = []
        self.secret: str | None = os.environ.get("RIGHTSDESK_LOCAL_WEBHOOK_SECRET") or None
        self.path_secrets: dict[str, str] = {}  # a controller's own path wins over `secret`
        # A test may make the controller answer with another status, to exercise retries or 410:
        # always (respond_status) or for the next few deliveries (fail: {"status", "times"}).
        self.respond_status = 204
        self.failures: list[int] = []
        # A slow controller (POST /_dev/webhooks {"delay_seconds": 2}): races with the subject's cancel.
        self.delay_seconds = 0.0
        self._lock = threading.Lock()

    def __call__(self, request: RequestHandler) -> None:
        if request.command != "POST":
            request.respond_json(405, {"error": {"code": "method_not_allowed", "message": "POST only"}})
            return
        body = request.read_body()
        headers = {name.lower(): value for name, value in request.headers.items()}
        path = request.path.split("?", 1)[0]
        verified, problem = self._verify(self.path_secrets.get(path) or self.secret, body, headers)
        with self._lock:
            status = self._next_status() if verified is not False else 401
            self.deliveries.append(
                {
                    "received_at": time.time(),
                    "path": path,
                    "webhook_id": headers.get("webhook-id"),
                    "webhook_timestamp": headers.get("webhook-timestamp"),
                    "signature_headers_present": all(h in headers for h in SIGNATURE_HEADERS),
                    "verified": verified,
                    "verify_error": problem,
                    "answered": status,
                    "body": _parse(body),
                }
            )
        log.info("receiver: delivery %s -> %d (verified=%s)", len(self.deliveries), status, verified)
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        request.respond(status, [], b"")

    @staticmethod
    def _verify(secret: str | None, body: bytes, headers: dict[str, str]) -> tuple[bool | None, str | None]:
        if not secret:
            return None, None
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        try:
            Webhook(secret).verify(body, headers)
        except WebhookVerificationError as error:
            return False, str(error)  # the library's messages name the failed check, never payload data
        except Exception as error:  # noqa: BLE001 - a malformed secret or header is a failed check too
            return False, type(error).__name__
        return True, None

    def _next_status(self) -> int:
        return self.failures.pop(0) if self.failures else self.respond_status

    def configure(self, settings: dict) -> dict:
        with self._lock:
            if "secret" in settings and settings.get("path"):
                self.path_secrets[str(settings["path"])] = settings["secret"]
            elif "secret" in settings:
                self.secret = settings["secret"] or None
            if "respond_status" in settings:
                self.respond_status = int(settings["respond_status"])
            if "delay_seconds" in settings:
                self.delay_seconds = float(settings["delay_seconds"] or 0)
            if "fail" in settings:
                fail = settings["fail"] or {}
                self.failures = [int(fail.get("status", 500))] * int(fail.get("times", 1))
            return {
                "secret_set": bool(self.secret),
                "respond_status": self.respond_status,
                "failures_left": len(self.failures),
            }

    def listing(self) -> list[dict]:
        with self._lock:
            return list(self.deliveries)

    def clear(self) -> None:
        with self._lock:
            self.deliveries.clear()


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")
