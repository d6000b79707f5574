"""Delivery through the local runner: requests routed per second, and DynamoDB writes per request.

Routing: N requests are submitted and verified with the dispatcher's queue held, then released;
the clock runs until the demo receiver (signature checked with `standardwebhooks`) has acknowledged
all N and each is `delivered`. That is the dispatcher's poller, handler, signing, the HTTP call and
two conditional transitions per request, one Lambda "container" at a time, as locally.

Writes: every DynamoDB write call this process makes (botocore `before-call.dynamodb.*`, on every
client created after `install_write_counter()`: boto3's, pynamodb's and powertools') is counted
while K requests go from submission through verification, webhook delivery, and the purge one
hour later by the retention sweeper (RetentionFunction), stream-driven deletion audits included.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from contextlib import contextmanager

import botocore.session

from bench.events import api_event

WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
RIGHTS_TABLE = "rightsdesk-local-RightsTable"
IDEMPOTENCY_TABLE = "rightsdesk-local-IdempotencyTable"
# 8 until the source's limit left the submission's transaction (docs/decisions.md, "Fewer AWS calls").
TARGET_WRITES = 9


class WriteCounter:
    """Write calls per table; a TransactWriteItems counts once, under every table it writes."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.active = False
        self._lock = threading.Lock()

    def __call__(self, model, params, **_) -> None:
        if not self.active or model.name not in WRITE_OPERATIONS:
            return
        # before-call hands over the serialized request: DynamoDB's is a JSON body.
        body = json.loads(params.get("body") or b"{}")
        tables = (
            {body.get("TableName")}
            | {part.get("TableName") for entry in body.get("TransactItems", []) for part in entry.values()}
            | set(body.get("RequestItems", {}))
        )
        with self._lock:
            for table in tables - {None}:
                self.counts[table] += 1

    @contextmanager
    def counting(self):
        with self._lock:
            self.counts.clear()
        self.active = True
        try:
            yield self.counts
        finally:
            self.active = False


WRITES = WriteCounter()


def install_write_counter() -> None:
    """Hook every botocore client created from now on; call before the local stack starts."""
    create_client = botocore.session.Session.create_client
    if getattr(create_client, "_counts_writes", False):
        return

    def counted(self, service_name, *args, **kwargs):
        client = create_client(self, service_name, *args, **kwargs)
        if service_name == "dynamodb":
            client.meta.events.register("before-call.dynamodb.*", WRITES)
        return client

    counted._counts_writes = True  # type: ignore[attr-defined]
    botocore.session.Session.create_client = counted


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


@contextmanager
def _timed_posts():
    """Wall time of each webhook POST (signature check by the receiver included), in ms."""
    from rightsdesk.platform import webhooks

    post, samples = webhooks.post, []

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return post(*args, **kwargs)
        finally:
            samples.append((time.perf_counter() - started) * 1000)

    webhooks.post = timed
    try:
        yield samples
    finally:
        webhooks.post = post


def routing_throughput(stack, count: int = 50) -> dict:
    pollers = _dispatcher_pollers(stack)
    for poller in pollers:
        poller.paused = True
    for poller in pollers:
        poller.held.wait(5)
    ids = _submit_and_verify(stack, count, "route")
    wanted = set(ids)
    with _timed_posts() as posts:
        started = time.perf_counter()
        for poller in pollers:
            poller.paused = False
        _wait(lambda: _received(stack, wanted) >= count, "every webhook")
        _wait(lambda: set(_statuses(ids).values()) == {"delivered"}, "every request delivered")
        elapsed = time.perf_counter() - started
    return {
        "requests": count,
        "seconds": elapsed,
        "per_second": count / elapsed,
        "post_p50_ms": sorted(posts)[len(posts) // 2],
    }


def writes_per_request(stack, count: int = 20) -> dict:
    from rightsdesk.kernel import clock
    from rightsdesk.store.items.requests import RequestItem

    with WRITES.counting() as counts:
        ids = _submit_and_verify(stack, count, "writes")
        _wait(lambda: set(_statuses(ids).values()) == {"delivered"}, "every request delivered")
        clock.advance(3600 + 60)  # the purge is due one hour after delivery
        stack.sync_clock()
        report = stack.invoke(
            "RetentionFunction", {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
        )
        keys = [(RequestItem.key(request_id), RequestItem.SK) for request_id in ids]
        _wait(
            lambda: all(item.personal_purged_at for item in RequestItem.batch_get(keys, consistent_read=True)),
            "every request purged",
        )
        time.sleep(2)  # the stream poller audits the purges; let it finish
        totals = dict(counts)
    return {
        "requests": count,
        "rights_table": totals.get(RIGHTS_TABLE, 0) / count,
        "idempotency_table": totals.get(IDEMPOTENCY_TABLE, 0) / count,
        "purged_by_sweeper": sum(c.get("purged", 0) for c in report.get("by_rule", {}).values()),
    }


def section(route: dict, writes: dict) -> str:
    verdict = "yes" if writes["rights_table"] <= TARGET_WRITES else "**no**"
    return f"""## Delivery: routing throughput and writes per request

Through the local runner in-process: DispatcherFunction fed by its SQS poller (batches of 5, one
invocation at a time), signed webhooks to the demo receiver, which verifies each with the
`standardwebhooks` library. {route["requests"]} verified requests were queued, then released.

| measure | value |
|---|---|
| requests routed per second | {route["per_second"]:.1f} ({route["requests"]} in {route["seconds"]:.1f} s) |
| webhook POST, signed, to the verifying receiver: p50 | {route["post_p50_ms"]:.1f} ms |
| RightsTable write calls per request, submit to purge (target <= {TARGET_WRITES}) | {writes["rights_table"]:.2f} ({verdict}) |
| IdempotencyTable write calls per request (mails and delivery) | {writes["idempotency_table"]:.2f} |

Write calls are counted with a botocore `before-call.dynamodb.*` hook on every client (a
transaction is one call) over {writes["requests"]} requests: submission, verification, routing,
webhook delivery, the purge by the retention sweeper an hour later ({writes["purged_by_sweeper"]}
purged), and the deletion audit events the table stream produces. Routing speed here is bound by
moto: each conditional status change is a TransactWriteItems, for which moto deep-copies the
whole table (once per item, for its rollback), and moto shares this process and its GIL. In Lambda
several pollers and containers run, and a DynamoDB transaction takes milliseconds.
"""
