"""Lambda's SQS poller in miniature, around the real NotifierFunction handler (bench/notices.py).

`python -m bench.notifier_worker [--trace-memory]`, with the environment of a notifier pointed at
moto. It reads commands on stdin, one per line: `wave INCIDENT_ID` receives ten at a time, invokes
the handler and deletes what succeeded until every notice of that incident has its outcome, then prints a
JSON line (seconds, mails handled, AWS calls the handler made per service, tracemalloc figures);
`quit` ends it. The handlers' own log lines go to /dev/null, as CloudWatch would take them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent


def _count_calls(calls: Counter, counting: list[bool]) -> None:
    """Count every AWS call the handler makes, through boto3's and pynamodb's own sessions alike."""
    from botocore import session as botocore_session

    original = botocore_session.Session.create_client

    def count(event_name: str, **_: object) -> None:
        if counting[0]:
            calls[event_name.split(".")[1]] += 1

    def create_client(self, *args, **kwargs):
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-call", count)
        return client

    botocore_session.Session.create_client = create_client


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trace-memory", action="store_true")
    args = parser.parse_args()
    answers = sys.stdout
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the process's lifetime; powertools logs there
    sys.path[:0] = [str(ROOT / "layers" / "core"), str(ROOT / "functions" / "notifier")]
    if args.trace_memory:
        tracemalloc.start()

    calls: Counter = Counter()
    counting = [False]  # only the handler's own calls, not the poller's receive and delete
    _count_calls(calls, counting)
    import boto3

    spec = importlib.util.spec_from_file_location("notifier_app", ROOT / "functions" / "notifier" / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    from rightsdesk.notices import breaches
    from rightsdesk.platform import config

    imported = tracemalloc.get_traced_memory()[0] if args.trace_memory else 0
    sqs = boto3.client("sqs")
    queue = config.settings().mail_queue_url
    context = SimpleNamespace(
        function_name="bench-notifier",
        memory_limit_in_mb=512,
        function_version="$LATEST",
        invoked_function_arn="arn:aws:lambda:eu-central-1:123456789012:function:bench-notifier",
        aws_request_id="bench",
        get_remaining_time_in_millis=lambda: 60_000,
    )
    handled = 0
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        incident = breaches.load(command[1])
        calls.clear()
        started, sent = time.perf_counter(), 0
        while True:
            messages = (
                sqs.receive_message(
                    QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
                ).get("Messages")
                or []
            )
            if not messages:
                if breaches.tally(incident, record=False)["total"]["pending"] == 0:
                    break
                continue
            event = {
                "Records": [
                    {
                        "messageId": m["MessageId"],
                        "receiptHandle": m["ReceiptHandle"],
                        "body": m["Body"],
                        "attributes": m.get("Attributes", {}),
                        "messageAttributes": {},
                        "md5OfBody": m["MD5OfBody"],
                        "eventSource": "aws:sqs",
                        "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:MailQueue",
                        "awsRegion": "eu-central-1",
                    }
                    for m in messages
                ]
            }
            counting[0] = True
            answer = app.lambda_handler(event, context)
            counting[0] = False
            failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
            done = [m for m in messages if m["MessageId"] not in failed]
            sent += len(done)
            if done:
                sqs.delete_message_batch(
                    QueueUrl=queue,
                    Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)],
                )
        handled += sent
        current, peak = tracemalloc.get_traced_memory() if args.trace_memory else (0, 0)
        answers.write(
            json.dumps(
                {
                    "seconds": time.perf_counter() - started,
                    "sent": sent,
                    "calls": dict(calls),
                    "handled": handled,
                    "imported_bytes": imported,
                    "current_bytes": current,
                    "peak_bytes": peak,
                }
            )
            + "\n"
        )
        answers.flush()


if __name__ == "__main__":
    main()
