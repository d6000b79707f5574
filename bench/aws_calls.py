"""AWS calls per operation: one submission, one verification, one delivery, each counted by function.

A stack records every AWS call its handlers make (RIGHTSDESK_LOCAL_RECORD_CALLS, local/calls.py: one
row per IAM action, rows of one API call sharing a `call` id); the runner's own polling is not a
handler's and is never recorded. One subject goes through the stack over HTTP, step by step, and the
file's rows written during each step are that step's calls:

- submission:   POST /v1/requests, PublicApiFunction's calls;
- verification: POST /v1/requests/{id}/verify, PublicApiFunction's calls;
- follow-up:    DeadlineWatchFunction's calls from the verification until the delivery: the
                verified write, read from the table's stream, has its routing and its confirmation
                queued (rightsdesk.routing.follow_up);
- delivery:     /_dev/drain until the demo receiver has the request, DispatcherFunction's calls
                (the invocation that takes the verified request to the controller's webhook).

A first subject warms every function (clients, the hash key, cached controller records and data
keys), as the containers of a running stack are; the next one whose steps all ran in warm
containers is counted. The same measure runs
in `make bench` (docs/benchmarks.md, between the aws-calls markers) and holds the budgets in
tests/integration/test_call_budgets.py.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import requests

START, END = "<!-- aws-calls:start -->", "<!-- aws-calls:end -->"
# What the verification and the delivery may cost (issue "fewer calls": 6 each; the verification
# is at 4 since its routing and confirmation follow from the table's stream); the submission's and
# the follow-up's are what they reached, held so that a call added on any path fails the test.
BUDGETS = {"submission": 3, "verification": 4, "follow-up": 2, "delivery": 6}
OPERATIONS = (
    ("submission", "PublicApiFunction"),
    ("verification", "PublicApiFunction"),
    ("follow-up", "DeadlineWatchFunction"),
    ("delivery", "DispatcherFunction"),
)
# Measured with this module on the code before the cuts (docs/decisions.md, "Fewer AWS calls"),
# kept to print beside today's figures.
BEFORE: dict[str, dict[str, int]] = {
    "submission": {"dynamodb.GetItem": 2, "dynamodb.TransactWriteItems": 1, "sqs.SendMessage": 1},
    "verification": {
        "dynamodb.GetItem": 7,
        "dynamodb.UpdateItem": 1,
        "dynamodb.TransactWriteItems": 1,
        "sqs.SendMessage": 2,
    },
    "delivery": {
        "dynamodb.PutItem": 1,
        "dynamodb.GetItem": 4,
        "dynamodb.TransactWriteItems": 2,
        "dynamodb.UpdateItem": 1,
    },
}


@dataclass(frozen=True)
class Step:
    name: str
    function: str
    calls: Counter[str]  # "service.Operation" -> API calls

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def read_rows(path: Path, start: int = 0, end: int | None = None) -> list[dict]:
    """The recorded rows between two byte offsets of the file (whole lines only)."""
    with path.open("rb") as recorded:
        recorded.seek(start)
        data = recorded.read() if end is None else recorded.read(end - start)
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def api_calls(rows: list[dict], function: str) -> Counter[str]:
    """API calls of `function`, by service.operation: a transaction's rows are one call."""
    seen: dict[str, str] = {}
    for row in rows:
        if row["function"] == function:
            seen[row.get("call") or str(id(row))] = f"{row['service']}.{row.get('operation') or row['action']}"
    return Counter(seen.values())


class _Subject:
    """One subject's submission, verification and delivery against a running stack, over HTTP."""

    def __init__(self, base_url: str, site: str = "demo"):
        self.base_url = base_url.rstrip("/")
        self.site = site
        self.http = requests.Session()
        self.http.headers["Accept"] = "application/json"

    def _ok(self, response: requests.Response) -> dict:
        if response.status_code >= 300:
            raise AssertionError(f"{response.request.method} {response.url}: {response.status_code} {response.text}")
        return response.json()

    def submit(self, email: str) -> str:
        body = {"site": self.site, "type": "access", "email": email}
        return self._ok(self.http.post(f"{self.base_url}/v1/requests", json=body, timeout=30))["request_id"]

    def code(self, email: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for mail in self._ok(self.http.get(f"{self.base_url}/_dev/outbox", timeout=30)):
                found = re.search(r"\b(\d{6})\b", mail.get("text") or "")
                if email in mail["to"] and found:
                    return found.group(1)
            time.sleep(0.05)
        raise AssertionError("no verification code mailed")

    def verify(self, request_id: str, code: str) -> None:
        self._ok(self.http.post(f"{self.base_url}/v1/requests/{request_id}/verify", json={"code": code}, timeout=30))

    def drain(self) -> None:
        self._ok(self.http.post(f"{self.base_url}/_dev/drain", timeout=60))

    def delivered(self, request_id: str) -> bool:
        return any(
            isinstance(hook.get("body"), dict)
            and hook["body"].get("type") == "dsr.request.forwarded"
            and hook["body"]["data"].get("request_id") == request_id
            for hook in self._ok(self.http.get(f"{self.base_url}/_dev/webhooks", timeout=30))
        )


def measure(base_url: str, recorded: Path, *, site: str = "demo", rounds: int = 6) -> list[Step]:
    """Count the calls of each operation for one subject on the stack at `base_url`, which records
    its calls to `recorded`. The demo receiver (or the site's webhook) must answer 2xx.

    Subjects go through one after another until one's three steps each ran in a warm container: a
    process (the `call` ids name it) that had served the same function before. The first subject
    warms; where the runner keeps several containers per function, a later one may still land on
    a cold one, and is not counted."""
    subject = _Subject(base_url, site)
    for _ in range(rounds):
        email = f"calls-{uuid.uuid4().hex[:8]}@example.org"
        subject.drain()  # nothing of an earlier step still running
        before_submit = _size(recorded)
        request_id = subject.submit(email)
        after_submit = _size(recorded)
        code = subject.code(email)
        subject.drain()
        before_verify = _size(recorded)
        subject.verify(request_id, code)
        after_verify = _size(recorded)
        deadline = time.monotonic() + 60
        while not subject.delivered(request_id):
            if time.monotonic() > deadline:
                raise AssertionError("the verified request never reached the webhook")
            subject.drain()
        subject.drain()
        after_delivery = _size(recorded)
        earlier = read_rows(recorded, 0, before_submit)
        steps = [
            ("submission", "PublicApiFunction", read_rows(recorded, before_submit, after_submit), earlier),
            ("verification", "PublicApiFunction", read_rows(recorded, before_verify, after_verify), earlier),
            # The stream's follow-up queues the route: it runs between the verification and the delivery.
            ("follow-up", "DeadlineWatchFunction", read_rows(recorded, before_verify, after_delivery), earlier),
            # From the verification's start: the dispatcher runs as soon as the route is queued.
            ("delivery", "DispatcherFunction", read_rows(recorded, before_verify, after_delivery), earlier),
        ]
        if all(_ran_warm(rows, before, function) for _, function, rows, before in steps):
            return [Step(name, function, api_calls(rows, function)) for name, function, rows, _ in steps]
    raise AssertionError(f"no subject of {rounds} ran every step in a warm container")


def _process(row: dict) -> str:
    return str(row.get("call") or "").partition("-")[0]


def _ran_warm(rows: list[dict], earlier: list[dict], function: str) -> bool:
    """Every call of `function` in `rows` came from a process that had made calls for it before."""
    warm = {_process(row) for row in earlier if row["function"] == function}
    return all(_process(row) in warm for row in rows if row["function"] == function)


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


# ------------------------------------------------------------------ make bench


def _listing(calls: dict[str, int]) -> str:
    return ", ".join(f"{name} x{count}" if count > 1 else name for name, count in sorted(calls.items())) or "none"


def section(steps: list[Step], before: dict[str, dict[str, int]] | None = None) -> str:
    before = BEFORE if before is None else before
    rows = []
    for step in steps:
        was = before.get(step.name) or {}
        budget = BUDGETS.get(step.name)
        rows.append(
            "| "
            + " | ".join(
                [
                    f"{step.name} ({step.function})",
                    f"{sum(was.values())}: {_listing(was)}" if was else "not measured",
                    f"**{step.total}**: {_listing(step.calls)}",
                    f"<= {budget} ({'yes' if step.total <= budget else '**no**'})" if budget else "",
                ]
            )
            + " |"
        )
    table = "\n".join(["| operation | before | now | budget |", "|---|---|---|---|", *rows])
    return f"""{START}
## AWS calls per operation

Every AWS call the handler makes for one subject's submission, verification, its follow-up and
delivery (the dispatcher's invocation that takes the verified request to the demo webhook), idempotency, rate
counters, KMS, Secrets Manager and queue sends included, the runner's own polling not: recorded by
the local runner (`RIGHTSDESK_LOCAL_RECORD_CALLS`, local/calls.py; a transaction is one call),
counted on a subject whose every step ran in a warm container, after one that warmed them
(bench/aws_calls.py).
Before: the code before the cuts recorded in docs/decisions.md ("Fewer AWS calls"). The budgets are
held by tests/integration/test_call_budgets.py.

{table}

What each call is, now:
- submission: the site's controller comes from the container's one-minute cache (a cold container
  reads the site pointer and the controller: 2 more); UpdateItem spends the source's limit (a
  conditional ADD of its own: a counter many callers share must not sit in their transactions);
  one TransactWriteItems writes the request, the code's hash, the audit event and spends the
  address's limit; one SendMessage queues the code's mail. An Idempotency-Key adds the record's
  PutItem and UpdateItem.
- verification: GetItem the request; BatchGetItem the wrong-code counters (address, source) and the
  subject's yearly count; UpdateItem spends the attempt on the code (conditional, before the
  comparison) and returns its hash; TransactWriteItems moves the status (conditional) with its audit
  event, deletes the code and counts the year. The controller's deadline setting comes from the
  one-minute cache. Before the table's stream became the verification's outbox, two SendMessage
  followed (6 calls, 4 waits).
- follow-up: the verified write, from the table's stream (DeadlineWatchFunction's `Verified`
  mapping): two SendMessage queue the routing and the confirmation, at the same time. A verification
  whose container dies after its transaction loses neither.
- delivery: PutItem and UpdateItem are the idempotency record; GetItem the request and the
  controller (always fresh: its state, endpoint and secrets); a TransactWriteItems for each
  conditional transition (verified -> forwarded before the POST, forwarded -> delivered after it),
  neither read back. The webhook secret's KMS Decrypt happens once per container and secret
  (cached by ciphertext), the hash key's Secrets Manager read once per container.
{END}"""


def run_isolated() -> list[Step]:
    """measure() in a fresh interpreter whose LocalStack records its calls (install() hooks botocore
    for the rest of the process: the other sections must not pay for it)."""
    import os
    import subprocess
    import sys
    import tempfile

    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as folder:
        recorded = Path(folder) / "calls.jsonl"
        done = subprocess.run(
            [sys.executable, "-m", "bench.aws_calls"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "RIGHTSDESK_LOCAL_RECORD_CALLS": str(recorded)},
        )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return [Step(step["name"], step["function"], Counter(step["calls"])) for step in figures]


def _main() -> None:
    import os

    from bench.stacks import bench_stack

    root = Path(__file__).resolve().parent.parent
    recorded = Path(os.environ["RIGHTSDESK_LOCAL_RECORD_CALLS"])
    with bench_stack(root) as stack:
        steps = measure(stack.base_url, recorded)
    print(json.dumps([{"name": s.name, "function": s.function, "calls": dict(s.calls)} for s in steps]))


if __name__ == "__main__":
    _main()
