"""A controller's webhook endpoint for rightsdesk: Python standard library plus `standardwebhooks`.

    pip install standardwebhooks
    WEBHOOK_SECRET=whsec_... python controller_receiver.py --port 8080 --store inbox.sqlite3

What a receiver has to get right, in the order this file does it:

1. Verify before trusting anything. rightsdesk signs every delivery the Standard Webhooks way
   (https://www.standardwebhooks.com); the public library checks the HMAC over the raw body and
   refuses a `webhook-timestamp` more than 5 minutes from this machine's clock (a replay of an old,
   captured delivery fails here). During a secret rotation rightsdesk signs with every valid secret
   (`webhook-signature` is a space-separated list) and this receiver may hold several secrets
   (`WEBHOOK_SECRET="whsec_new whsec_old"`, or `--secrets-file`, re-read when it changes): one match
   is enough. A bad signature is answered 401 and nothing is stored.
2. Store, then answer. rightsdesk counts only a 2xx as delivered and waits at most 10 seconds, so
   the event is written to a small SQLite inbox and answered 204 at once; the work happens later,
   on a worker thread. If the inbox cannot be written, the answer is 503 and rightsdesk retries
   (5 s, 5 min, 30 min, ... for about three days).
3. Deduplicate on `webhook-id`. It is the same on every retry of an event, so a delivery whose 204
   was lost arrives again: the inbox's primary key turns it into a no-op (answered 204 again). The
   inbox is a file, so this survives a restart; in production use your own database.
4. Process later. The worker handles each stored event once and then drops its body (the subject's
   details are personal data: keep what your process needs, where it belongs). Events stored but not
   processed when the receiver stopped are picked up when it starts again.

410 Gone tells rightsdesk that this endpoint is retired: it stops calling it at once, removes the
webhook secrets and sends requests to your privacy contact by email instead (an operator, or you
through rightsdesk, turns webhooks on again with a new URL and a new secret). Answer 410 only when
you mean that (`--gone` does, for trying it out); any other 4xx or 5xx is retried.

rightsdesk calls only https URLs with public addresses: run this behind a TLS-terminating proxy.
(The local run, `make run`, is the one exception: it calls plain http on 127.0.0.1.)
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

MAX_BODY_BYTES = 1024 * 1024
# rightsdesk retries an event for about 3.5 days; an id must be remembered at least that long.
KEEP_IDS_SECONDS = 7 * 24 * 3600


def handle(webhook_id: str, event: dict) -> None:
    """Your code: open a ticket, start the erasure job, ... Here: one line per event.

    It runs on the worker, after the delivery was answered, so it may be slow; if it raises, the
    event stays unprocessed and is tried again at the next start. `webhook_id` is a good
    idempotency key for whatever this starts downstream.
    """
    data = event["data"]
    print(
        f"processed {event['type']} webhook-id={webhook_id} request={data.get('request_id', '-')}"
        f" due={data.get('due_at', '-')}",
        flush=True,
    )
    if event["type"] == "dsr.request.forwarded" and data.get("subject"):
        # rightsdesk deletes the subject's details an hour after delivery: keep what you need now.
        print(f"  subject email on file: {'yes' if data['subject'].get('email') else 'no'}", flush=True)


class Secrets:
    """The secrets to verify with: from WEBHOOK_SECRET (space-separated) or a file, one per line,
    re-read whenever it changes, so a rotation needs no restart."""

    def __init__(self, path: str | None, from_env: str | None):
        self.path = Path(path) if path else None
        self.from_env = from_env or ""
        self._seen: tuple | None = None
        self._webhooks: list[Webhook] = []
        self._lock = threading.Lock()

    def webhooks(self) -> list[Webhook]:
        with self._lock:
            if self.path is None:
                if self._seen is None:
                    self._seen = ()
                    self._webhooks = _parse_secrets(self.from_env)
                return self._webhooks
            stat = self.path.stat()
            version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if version != self._seen:
                self._seen = version
                try:
                    self._webhooks = _parse_secrets(self.path.read_text(encoding="utf-8"))
                except Exception as error:  # noqa: BLE001 - a bad edit must not stop verification
                    if not self._webhooks:
                        raise
                    print(f"secrets file not usable ({type(error).__name__}): kept the previous secrets", flush=True)
                    return self._webhooks
                print(f"secrets loaded: {len(self._webhooks)}", flush=True)
            return self._webhooks


def _parse_secrets(text: str) -> list[Webhook]:
    words = [word for line in text.splitlines() for word in line.split("#", 1)[0].split()]
    return [Webhook(word) for word in words]


def verify(secrets: Secrets, body: bytes, headers: dict[str, str]) -> dict:
    """The event if any of our secrets signed it (and its timestamp is fresh); else it raises."""
    failure: Exception = WebhookVerificationError("no secret configured")
    for webhook in secrets.webhooks():
        try:
            return webhook.verify(body, headers)
        except WebhookVerificationError as error:
            failure = error
    raise failure


class Inbox:
    """Events by `webhook-id` in SQLite: the dedupe key and the work queue in one table."""

    def __init__(self, path: str):
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.lock = threading.Lock()  # one connection, shared by the HTTP threads and the worker
        with self.lock:
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS events (webhook_id TEXT PRIMARY KEY, type TEXT NOT NULL,"
                " body TEXT, received_at REAL NOT NULL, processed_at REAL)"
            )
            self.db.execute("DELETE FROM events WHERE processed_at < ?", (time.time() - KEEP_IDS_SECONDS,))

    def store(self, webhook_id: str, event: dict) -> bool:
        """True if the event is new; False if this `webhook-id` was stored before (a retry or replay)."""
        with self.lock:
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO events (webhook_id, type, body, received_at) VALUES (?, ?, ?, ?)",
                (webhook_id, event.get("type", "?"), json.dumps(event), time.time()),
            )
            return cursor.rowcount == 1

    def unprocessed(self) -> list[str]:
        with self.lock:
            rows = self.db.execute("SELECT webhook_id FROM events WHERE processed_at IS NULL ORDER BY received_at")
            return [row[0] for row in rows]

    def load(self, webhook_id: str) -> dict | None:
        with self.lock:
            row = self.db.execute(
                "SELECT body FROM events WHERE webhook_id = ? AND processed_at IS NULL", (webhook_id,)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def done(self, webhook_id: str) -> None:
        """Processed: the id stays (for dedupe), the body with its personal data goes."""
        with self.lock:
            self.db.execute(
                "UPDATE events SET processed_at = ?, body = NULL WHERE webhook_id = ?", (time.time(), webhook_id)
            )


def work(inbox: Inbox, pending: queue.Queue) -> None:
    """The worker: handles each stored event once, in the order received."""
    while True:
        webhook_id = pending.get()
        event = inbox.load(webhook_id)
        if event is None:
            continue  # already processed (queued twice: at start and by a delivery)
        try:
            handle(webhook_id, event)
        except Exception as error:  # noqa: BLE001 - one bad event must not stop the worker
            print(f"processing failed webhook-id={webhook_id}: {type(error).__name__}", flush=True)
            continue
        inbox.done(webhook_id)


class Receiver(BaseHTTPRequestHandler):
    # Set in main(): one receiver per process.
    secrets: Secrets
    inbox: Inbox
    pending: queue.Queue
    gone = False

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        if self.gone:
            self._answer(410)  # retired: rightsdesk switches this controller to email
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._answer(413)
            return
        body = self.rfile.read(length)  # the raw bytes: verify before parsing anything
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            event = verify(self.secrets, body, headers)
        except WebhookVerificationError as error:
            # The library's message names the failed check ("timestamp too old", "no matching
            # signature"), never the payload.
            print(f"rejected: {error}", flush=True)
            self._answer(401)
            return
        webhook_id = headers["webhook-id"]
        try:
            new = self.inbox.store(webhook_id, event)
        except sqlite3.Error as error:
            print(f"could not store webhook-id={webhook_id}: {type(error).__name__}", flush=True)
            self._answer(503)  # not stored: let rightsdesk retry
            return
        if new:
            print(f"stored {event['type']} webhook-id={webhook_id}", flush=True)
            self.pending.put(webhook_id)
        else:
            print(f"duplicate webhook-id={webhook_id}: already stored", flush=True)
        self._answer(204)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        pass  # access lines would only repeat what do_POST prints


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--store", default="receiver-inbox.sqlite3", help="the inbox (SQLite file)")
    parser.add_argument("--secrets-file", help="whsec_ secrets, one per line; re-read when it changes")
    parser.add_argument("--gone", action="store_true", help="answer 410 Gone to every delivery")
    args = parser.parse_args()
    if not args.secrets_file and not os.environ.get("WEBHOOK_SECRET"):
        print(
            "set WEBHOOK_SECRET to the whsec_... secret rightsdesk showed when your webhook was registered"
            " (or use --secrets-file)",
            file=sys.stderr,
        )
        return 2
    Receiver.secrets = Secrets(args.secrets_file, os.environ.get("WEBHOOK_SECRET"))
    Receiver.secrets.webhooks()  # a malformed secret fails now, not at the first delivery
    Receiver.inbox = Inbox(args.store)
    Receiver.pending = queue.Queue()
    Receiver.gone = args.gone
    for webhook_id in Receiver.inbox.unprocessed():  # stored before a restart, not yet handled
        Receiver.pending.put(webhook_id)
    threading.Thread(target=work, args=(Receiver.inbox, Receiver.pending), daemon=True).start()
    server = ThreadingHTTPServer((args.host, args.port), Receiver)
    print(f"listening on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
