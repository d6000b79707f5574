"""Delivery through the local runner: requests routed per second, and DynamoDB writes per request.

Routing: N requests are submitted and verified with the dispatcher's queue held, then released;
the clock runs until the demo receiver (signature checked with `standardwebhooks`) has acknowledged
all N and each is `delivered`. That is the dispatcher's poller, handler, signing, the HTTP call and
two conditional transitions per request, in the dispatcher's pool of containers (local/README.md).

Writes: every DynamoDB write call the handlers make (recorded by each container, local/calls.py,
once `record_calls()` has run: boto3's, pynamodb's and powertools' clients alike) is counted while
K requests go from submission through verification, webhook delivery, and the purge one hour later
by the retention sweeper (RetentionFunction), stream-driven deletion audits included.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.aws_calls import read_rows
from bench.events import api_event
from local.pollers import drain

WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
RIGHTS_TABLE = "rightsdesk-local-RightsTable"
IDEMPOTENCY_TABLE = "rightsdesk-local-IdempotencyTable"
# 8 until the source's limit left the submission's transaction (docs/decisions.md, "Fewer AWS calls").
TARGET_WRITES = 9


def record_calls() -> Path:
    """Have the handlers of every stack started from now on record their AWS calls (local/calls.py);
    call before any stack starts. Handlers run in container processes, out of reach of a hook here."""
    handle, name = tempfile.mkstemp(prefix="rightsdesk-bench-calls-", suffix=".jsonl")
    os.close(handle)
    os.environ["RIGHTSDESK_LOCAL_RECORD_CALLS"] = name
    return Path(name)


def _recorded_bytes() -> int:
    path = os.environ.get("RIGHTSDESK_LOCAL_RECORD_CALLS")
    return Path(path).stat().st_size if path and Path(path).exists() else 0


def writes_by_table(since: int) -> Counter[str]:
    """DynamoDB write calls per table recorded after byte offset `since`; a TransactWriteItems
    counts once under every table it writes."""
    path = os.environ.get("RIGHTSDESK_LOCAL_RECORD_CALLS")
    if not path:
        raise RuntimeError("bench: call record_calls() before the stack starts")
    writes = {
        (row["call"], row["resource"])
        for row in read_rows(Path(path), since)
        if row.get("service") == "dynamodb" and row.get("operation") in WRITE_OPERATIONS
    }
    return Counter(table for _, table in writes)


# ------------------------------------------------------------------ helpers


def _wait(predicate, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench: {what} did not happen within {timeout:.0f} s")
        time.sleep(0.02)


def _codes(stack) -> dict[str, str]:
    """request id -> verification code, from the emails the notifier sent (moto's SES)."""
    found = {}
    for mail in stack.outbox():
        match = re.search(r"/verify/(dsr_\w+)\?code=(\d{6})", mail.get("text") or "")
        if match:
            found[match.group(1)] = match.group(2)
    return found


def _submit_and_verify(stack, count: int, tag: str) -> list[str]:
    ids = []
    for n in range(count):
        event = api_event(
            "POST",
            "/v1/requests",
            "/v1/requests",
            body={"site": "demo", "type": "access", "email": f"bench-{tag}-{n}@example.org"},
        )
        response = stack.invoke("PublicApiFunction", event)
        assert response["statusCode"] == 202, response
        ids.append(json.loads(response["body"])["request_id"])
    _wait(lambda: set(ids) <= set(_codes(stack)), "the verification emails")
    codes = _codes(stack)
    for request_id in ids:
        event = api_event(
            "POST",
            "/v1/requests/{id}/verify",
            f"/v1/requests/{request_id}/verify",
            body={"code": codes[request_id]},
            path_parameters={"id": request_id},
        )
        response = stack.invoke("PublicApiFunction", event)
        assert response["statusCode"] == 200, response
    return ids


def _statuses(ids: list[str]) -> dict[str, str]:
    from rightsdesk.store.items.requests import RequestItem

    keys = [(RequestItem.key(request_id), RequestItem.SK) for request_id in ids]
    return {item.request_id: item.status for item in RequestItem.batch_get(keys, consistent_read=True)}


def _dispatcher_pollers(stack):
    from local.pollers import SqsPoller

    return [w for w in stack.workers if isinstance(w, SqsPoller) and w.function.spec.logical_id == "DispatcherFunction"]


def _received(stack, ids: set[str]) -> int:
    return sum(
        1
        for d in stack.receiver_app.listing()
        if isinstance(d["body"], dict) and d["body"].get("data", {}).get("request_id") in ids and d["answered"] < 300
    )


# ------------------------------------------------------------------ measurements


def webhook_post_ms(stack, count: int = 50) -> list[float]:
    """Wall time (ms) of signed webhook POSTs to the verifying receiver, through the same
    rightsdesk.platform.webhooks code the dispatcher sends with; timed here, since the dispatcher
    runs in containers of its own."""
    import base64
    import secrets

    from rightsdesk.platform import webhooks

    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    path = "/webhooks/bench-timing"
    stack.receiver_app.configure({"secret": secret, "path": path})
    samples = []
    for n in range(count):
        body = webhooks.envelope("webhook.test", {"n": n})
        headers = webhooks.signed_headers([secret], webhooks.webhook_id("bench", str(n)), body)
        started = time.perf_counter()
        result = webhooks.post(stack.receiver_url + path, body, headers, allow_loopback_http=True)
        samples.append((time.perf_counter() - started) * 1000)
        assert result.status is not None and 200 <= result.status < 300, result
    return samples


def routing_throughput(stack, count: int = 50) -> dict:
    pollers = _dispatcher_pollers(stack)
    for poller in pollers:
        poller.paused = True
    for poller in pollers:
        poller.held.wait(5)
    ids = _submit_and_verify(stack, count, "route")
    # The routes are queued from the table's stream (rightsdesk.routing.follow_up): all of them wait
    # in the queue before the clock starts.
    _wait(lambda: drain(stack.workers), "the follow-ups")
    wanted = set(ids)
    started = time.perf_counter()
    for poller in pollers:
        poller.paused = False
    _wait(lambda: _received(stack, wanted) >= count, "every webhook")
    _wait(lambda: set(_statuses(ids).values()) == {"delivered"}, "every request delivered")
    elapsed = time.perf_counter() - started
    posts = webhook_post_ms(stack)
    return {
        "requests": count,
        "seconds": elapsed,
        "per_second": count / elapsed,
        "post_p50_ms": sorted(posts)[len(posts) // 2],
    }


def writes_per_request(stack, count: int = 20) -> dict:
    from rightsdesk.kernel import clock
    from rightsdesk.store.items.requests import RequestItem

    since = _recorded_bytes()
    ids = _submit_and_verify(stack, count, "writes")
    _wait(lambda: set(_statuses(ids).values()) == {"delivered"}, "every request delivered")
    clock.advance(3600 + 60)  # the purge is due one hour after delivery
    stack.sync_clock()
    report = stack.invoke("RetentionFunction", {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}})
    keys = [(RequestItem.key(request_id), RequestItem.SK) for request_id in ids]
    _wait(
        lambda: all(item.personal_purged_at for item in RequestItem.batch_get(keys, consistent_read=True)),
        "every request purged",
    )
    time.sleep(2)  # the stream poller audits the purges; let it finish
    totals = writes_by_table(since)
    return {
        "requests": count,
        "rights_table": totals.get(RIGHTS_TABLE, 0) / count,
        "idempotency_table": totals.get(IDEMPOTENCY_TABLE, 0) / count,
        "purged_by_sweeper": sum(c.get("purged", 0) for c in report.get("by_rule", {}).values()),
    }


def section(route: dict, writes: dict) -> str:
    verdict = "yes" if writes["rights_table"] <= TARGET_WRITES else "**no**"
    return f"""## Delivery: routing throughput and writes per request

Through the local runner: DispatcherFunction fed by its SQS poller (batches of 5, several at once
in the function's pool of containers), signed webhooks to the demo receiver, which verifies each
with the `standardwebhooks` library. {route["requests"]} verified requests were queued, then released.

| measure | value |
|---|---|
| requests routed per second | {route["per_second"]:.1f} ({route["requests"]} in {route["seconds"]:.1f} s) |
| webhook POST, signed, to the verifying receiver: p50 | {route["post_p50_ms"]:.1f} ms |
| RightsTable write calls per request, submit to purge (target <= {TARGET_WRITES}) | {writes["rights_table"]:.2f} ({verdict}) |
| IdempotencyTable write calls per request (mails and delivery) | {writes["idempotency_table"]:.2f} |

Write calls are counted from the calls every container records (local/calls.py; a transaction is
one call, under each table it writes) over {writes["requests"]} requests: submission, verification, routing,
webhook delivery, the purge by the retention sweeper an hour later ({writes["purged_by_sweeper"]}
purged), and the deletion audit events the table stream produces. The webhook POST is timed from
the bench process through the dispatcher's own sending code (rightsdesk.platform.webhooks). Routing
speed here is bound by this machine's two cores, shared by moto's process, the runner and the
containers; in Lambda a DynamoDB transaction takes milliseconds.
"""
