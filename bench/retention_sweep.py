"""What one retention sweep reads, as the table grows and the number of expired items stays fixed.

The table is seeded cumulatively (1k, then 10k, then optionally 100k live items) with batch writes
straight into moto: live items are requests scheduled 1 to 30 days ahead, the expired ones are
delivered requests whose purge is due. Each round then runs RetentionFunction's handler once and
reads its report: items read (index entries plus the items themselves, counted from DynamoDB's
answers; tests/unit/test_retention_engine.py checks the count against a botocore hook), queries,
and wall time. If the sweep scanned, or read live items, the counts would grow with the table.
"""

from __future__ import annotations

import time
from datetime import timezone

from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.retention import Rule

WRITE_BATCH = 25  # BatchWriteItem's limit
DAY = 86400


def _request(n: int, due: int, rule: Rule, created: str) -> dict:
    pk = f"REQ#bench{n:07d}"
    keys = retention.expiry_index_keys(due, pk, "REQUEST")
    return {
        "pk": {"S": pk},
        "sk": {"S": "REQUEST"},
        "request_id": {"S": pk[4:]},
        "controller_id": {"S": "ctl_bench"},
        "site": {"S": "bench"},
        "request_type": {"S": "access"},
        "status": {"S": "delivered"},
        "locale": {"S": "en"},
        "relationship": {"S": "self"},
        "email": {"S": f"bench-{n}@example.org"},
        "created_at": {"S": created},
        "verified_at": {"S": created},
        "expires_at": {"N": str(due + 3 * 365 * DAY)},
        "retention_rule": {"S": rule.value},
        "retention_due_at": {"N": str(due)},
        "gsi2pk": {"S": keys["gsi2pk"]},
        "gsi2sk": {"S": keys["gsi2sk"]},
    }


def _seed(client, table: str, first: int, live: int, expired: int) -> float:
    now = clock.epoch()
    created = clock.now().astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
    items = [_request(first + n, now + DAY * (1 + n % 30), Rule.SKELETON, created) for n in range(live)]
    items += [_request(first + live + n, now - 60, Rule.DELIVERED_SUBJECT_DATA, created) for n in range(expired)]
    started = time.perf_counter()
    for start in range(0, len(items), WRITE_BATCH):
        pending = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + WRITE_BATCH]]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None
    return time.perf_counter() - started


def measure(stack, sizes: tuple[int, ...] = (1_000, 10_000), expired: int = 100) -> list[dict]:
    client = stack.client("dynamodb")
    table = "rightsdesk-local-RightsTable"
    rows, live, serial = [], 0, 0
    for size in sizes:
        seed_seconds = _seed(client, table, serial, size - live, expired)
        serial += size - live + expired
        live = size
        event = {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
        started = time.perf_counter()
        report = stack.invoke("RetentionFunction", event)
        elapsed = time.perf_counter() - started
        purged = sum(counts.get("purged", 0) for counts in report["by_rule"].values())
        assert purged == expired, report
        rows.append(
            {
                "live": size,
                "expired": expired,
                "items_read": report["items_read"],
                "queries": report["queries"],
                "sweep_ms": elapsed * 1000,
                "seed_s": seed_seconds,
            }
        )
        # The purged ones now wait for their skeleton's 3 years: live from here on.
        live += expired
    return rows


def section(rows: list[dict], skipped_100k: bool) -> str:
    header = "| live items | expired | items read | queries | sweep (ms) | seeding (s) |\n|---|---|---|---|---|---|\n"
    body = "\n".join(
        f"| {r['live']:,} | {r['expired']} | {r['items_read']} | {r['queries']} | {r['sweep_ms']:.0f} | {r['seed_s']:.1f} |"
        for r in rows
    )
    note = (
        "\n\n100k live items are opt-in (`.venv/bin/python -m bench --retention-100k`): seeding them into moto "
        "takes minutes on this machine, the sweep itself does not."
        if skipped_100k
        else ""
    )
    return f"""## Retention sweep: cost follows what expired, not the table

One RetentionFunction run (handler called in-process against moto server) after seeding live items
(scheduled 1-30 days ahead) and {rows[0]["expired"] if rows else 100} delivered requests whose purge is due. Items read =
expiry-index entries + the items read back (+1 for the sweep state once one exists); one query per day bucket since the
last sweep (the first sweep starts on the table's creation day). The sweep's wall time is about 100
conditional writes at moto's latency (tens of ms each here, with the local stream poller in the
same process); it does not grow with the table either.

{header}{body}{note}
"""


def run_isolated(sizes: tuple[int, ...], expired: int = 100) -> list[dict]:
    """measure() in a fresh interpreter with a LocalStack of its own: exact live counts, and no
    clients cached by an earlier stack in this process."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "bench.retention_sweep", ",".join(map(str, sizes)), str(expired)],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _main(argv: list[str]) -> None:
    import json
    import sys
    from pathlib import Path

    from local.stack import LocalStack

    root = Path(__file__).resolve().parent.parent
    sizes = tuple(int(size) for size in argv[0].split(","))
    expired = int(argv[1]) if len(argv) > 1 else 100
    with LocalStack(root / "template.yaml", gateway_port=0, moto_port=0, receiver_port=0, schedules=False) as stack:
        rows = measure(stack, sizes, expired)
    # The handlers log to stdout: the result is the last line.
    sys.stdout.write("\n" + json.dumps(rows) + "\n")


if __name__ == "__main__":
    import sys

    _main(sys.argv[1:])
