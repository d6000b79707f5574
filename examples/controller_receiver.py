"""A controller's webhook endpoint for rightsdesk, in the standard library plus `standardwebhooks`.

    pip install standardwebhooks
    WEBHOOK_SECRET=whsec_... python controller_receiver.py --port 8080

rightsdesk signs every delivery the Standard Webhooks way (https://www.standardwebhooks.com); the
public library checks the signature and the timestamp (5 minutes' tolerance against replays).
Answer 2xx only once the event is safely stored: anything else is retried, for about three days.
Deliveries can repeat (a retry after a lost answer); `webhook-id` is the same each time, so
remember the ids you have handled. Answering 410 Gone tells rightsdesk to stop calling this URL
and to email requests to your privacy contact instead.

Run it behind HTTPS: rightsdesk calls only https URLs with public addresses.
"""

from __future__ import annotations

import argparse
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

MAX_BODY_BYTES = 1024 * 1024
seen_ids: set[str] = set()  # use your database in production: ids must survive a restart


def handle(event: dict) -> None:
    """Your code: open a ticket, start the erasure job, ... Here: print one line per event."""
    data = event["data"]
    print(f"verified {event['type']} request={data.get('request_id', '-')} due={data.get('due_at', '-')}", flush=True)
    if event["type"] == "dsr.request.forwarded" and data.get("subject"):
        # rightsdesk deletes the subject's details soon after delivery: keep what you need now.
        print(f"  subject email on file: {bool(data['subject'].get('email'))}", flush=True)


class Receiver(BaseHTTPRequestHandler):
    webhook: Webhook  # set in main()

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._answer(413)
            return
        body = self.rfile.read(length)
        try:
            event = self.webhook.verify(body, dict(self.headers.items()))
        except WebhookVerificationError as error:
            print(f"rejected: {error}", flush=True)
            self._answer(401)
            return
        webhook_id = self.headers["webhook-id"]
        if webhook_id not in seen_ids:
            handle(event)
            seen_ids.add(webhook_id)
        self._answer(204)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        pass  # access lines would only repeat what handle() prints


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    secret = os.environ.get("WEBHOOK_SECRET")
    if not secret:
        print(
            "set WEBHOOK_SECRET to the whsec_... secret rightsdesk showed when your webhook was registered",
            file=sys.stderr,
        )
        return 2
    Receiver.webhook = Webhook(secret)
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
