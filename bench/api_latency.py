"""Warm latency of the public API's submit and verify, in-process against moto server.

The handler is called directly (no HTTP gateway) with API Gateway events, the way Lambda calls
a warm container; moto answers over real HTTP on loopback, so every AWS call is a real round trip.
"""

from __future__ import annotations

import json
import os
import time

from bench.events import api_event


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _codes_from_mail_queue(sqs, queue_url: str, wanted: int) -> dict[str, str]:
    """request id -> code, read straight from the MailQueue (the notifier is not running here)."""
    codes: dict[str, str] = {}
    while len(codes) < wanted:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        if not messages:
            break
        for message in messages:
            body = json.loads(message["Body"])
            if body.get("kind") == "verification_code":
                # The message names the request only; the code is derived as the notifier derives it.
                from rightsdesk.platform import subject_secrets

                request_id = body["ids"]["request_id"]
                codes[request_id] = subject_secrets.verification_code(request_id)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return codes


def _codes_from_outbox(stack, wanted: set[str], timeout: float = 120) -> dict[str, str]:
    """request id -> code from the emails the stack sent: LocalStack runs the MailQueue poller, so
    the notifier takes most messages before the queue can be read."""
    import re

    codes: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while wanted - codes.keys() and time.monotonic() < deadline:
        for mail in stack.outbox():
            for request_id, code in re.findall(r"/verify/(dsr_\w+)\?code=(\d{6})", mail.get("text") or ""):
                codes[request_id] = code
        time.sleep(0.2)
    return codes


def measure(stack, count: int = 200) -> list[dict]:
    import boto3

    invoke = stack.invoke
    submit_ms, verify_ms, request_ids = [], [], []
    for n in range(count + 5):
        event = api_event(
            "POST",
            "/v1/requests",
            "/v1/requests",
            body={"site": "demo", "type": "access", "email": f"bench-{n}@example.org"},
        )
        start = time.perf_counter()
        response = invoke("PublicApiFunction", event)
        elapsed = (time.perf_counter() - start) * 1000
        assert response["statusCode"] == 202, response
        request_ids.append(json.loads(response["body"])["request_id"])
        if n >= 5:  # the first calls open connections and fill caches
            submit_ms.append(elapsed)

    sqs = boto3.client("sqs")
    # LocalStack puts the template's shared environment into os.environ (it has no `env` attribute).
    codes = _codes_from_mail_queue(sqs, os.environ["MAIL_QUEUE_URL"], len(request_ids))
    codes.update(_codes_from_outbox(stack, set(request_ids) - codes.keys()))
    for n, request_id in enumerate(request_ids):
        event = api_event(
            "POST",
            "/v1/requests/{id}/verify",
            f"/v1/requests/{request_id}/verify",
            body={"code": codes[request_id]},
            path_parameters={"id": request_id},
        )
        start = time.perf_counter()
        response = invoke("PublicApiFunction", event)
        elapsed = (time.perf_counter() - start) * 1000
        assert response["statusCode"] == 200, response
        if n >= 5:
            verify_ms.append(elapsed)

    return [
        {
            "operation": name,
            "n": len(samples),
            "p50_ms": _percentile(samples, 0.5),
            "p99_ms": _percentile(samples, 0.99),
        }
        for name, samples in (("submit", submit_ms), ("verify", verify_ms))
    ]
