"""Standard Webhooks (https://www.standardwebhooks.com): ids, signatures, and the one HTTP call.

A controller verifies a delivery with the public `standardwebhooks` library: HMAC-SHA256 over
"<webhook-id>.<webhook-timestamp>.<body>" with the base64-decoded part of its `whsec_` secret.
While a secret is being rotated every valid one signs, space-separated.

The POST goes to the address the SSRF guard approved at send time (a name may resolve elsewhere a
moment later), keeps the URL's host name for the Host header and for TLS certificate checks, and
never follows a redirect. Nothing here logs a body, a URL or a secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from urllib.parse import urlsplit

from rightsdesk.kernel import clock
from rightsdesk.platform import ssrf

EVENT_FORWARDED = "dsr.request.forwarded"
EVENT_CANCELLED = "dsr.request.cancelled"
EVENT_OVERDUE = "dsr.request.overdue"
EVENT_TEST = "webhook.test"
# About no request: one per controller concerned (the DeliveryQueue message has the same name).
EVENT_BREACH_NOTICE = "breach.notice"
EVENT_POLICY_UPDATED = "policy.updated"
EVENT_CONSENT_GPC = "consent.gpc"  # a visitor's Global Privacy Control signal the controller forwarded
EVENT_EXECUTED = "dsr.request.executed"  # an execution the controller asked for ended: its receipt's summary

SECRET_PREFIX = "whsec_"
CONNECT_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 10
# The answer is only read for its status; a controller's error page is not our business.
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "rightsdesk-webhooks/1"


@dataclass(frozen=True)
class SendResult:
    """How one attempt ended: an HTTP status, or the kind of failure before there was one."""

    status: int | None = None
    failure: str | None = None  # refused_address | timeout | connection | tls

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        return self.status == 410

    @property
    def cause(self) -> str:
        """A short word for audit events and logs: `http_500`, `timeout`, ..."""
        return f"http_{self.status}" if self.status is not None else str(self.failure)


def webhook_id(*parts: str) -> str:
    """The same event about the same request always gets the same id, so retries are recognisable."""
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
    return f"msg_{digest}"


def _key(secret: str) -> bytes:
    # Unpadded base64 is accepted, as the reference library does.
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX) + "==")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signature_header(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    if not secrets:
        raise ValueError("a webhook needs at least one secret to be signed with")
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets)


def envelope(event_type: str, data: dict, at: datetime | None = None) -> bytes:
    """The body: `{"type", "timestamp", "data"}`; the timestamp is when the event happened."""
    document = {"type": event_type, "timestamp": clock.isoformat(at or clock.now()), "data": data}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def signed_headers(secrets: list[str], msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    # The wall clock, not the injectable one: receivers check the timestamp against their own
    # clock (5 minutes' tolerance) to refuse replays, so it must be when the request is sent.
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


@lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


def _pinned(connection: http.client.HTTPConnection, ip: str) -> http.client.HTTPConnection:
    """Make `connection` open its socket to `ip`; Host header and TLS server name stay the URL's."""

    def create_connection(address, timeout, source_address=None):
        sock = socket.create_connection((ip, address[1]), CONNECT_TIMEOUT_SECONDS, source_address)
        sock.settimeout(READ_TIMEOUT_SECONDS)
        return sock

    connection._create_connection = create_connection  # type: ignore[attr-defined]
    return connection


def post(url: str, body: bytes, headers: dict[str, str], *, allow_loopback_http: bool) -> SendResult:
    """POST once. Any answer is a result; only a 2xx is a delivery."""
    return exchange(url, body, headers, allow_loopback_http=allow_loopback_http)[0]


def exchange(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_loopback_http: bool,
    max_answer_bytes: int = MAX_RESPONSE_BYTES,
) -> tuple[SendResult, bytes]:
    """POST once through the SSRF guard and return the result with at most `max_answer_bytes` of
    the answer's body (for callers that read an answer, as the HTTP connector does)."""
    try:
        host, port, ip = ssrf.resolve_public(url, allow_loopback_http)
    except (ssrf.UnsafeUrl, OSError):
        return SendResult(failure="refused_address"), b""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=READ_TIMEOUT_SECONDS, context=_tls()
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=READ_TIMEOUT_SECONDS)
    _pinned(connection, ip)
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read(max_answer_bytes)
        return SendResult(status=response.status), answer
    except TimeoutError:
        return SendResult(failure="timeout"), b""
    except ssl.SSLError:
        return SendResult(failure="tls"), b""
    except (OSError, http.client.HTTPException):
        return SendResult(failure="connection"), b""
    finally:
        connection.close()
