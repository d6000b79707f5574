"""What one lifecycle run reads, as the number of accounts grows and the number crossing a threshold
stays fixed.

Accounts are seeded cumulatively (1k, then 10k, then 100k unless --lifecycle-small) with batch writes straight
into moto, as the daily activity write leaves them: active, last used 0 to 26 days ago, filed on the
due index (GSI2, LIFE#<day>) at their warning time. Before each round a fixed number of further
accounts were last used 30 days ago, so their warning is due. Each round then runs
LifecycleFunction's scheduled handler once and reads its report: items read (index entries, the
accounts read back, the run's state), queries and wall time. If the run scanned, or read accounts
not yet due, the counts would grow with the accounts.
"""

from __future__ import annotations

import time
from datetime import timedelta, timezone

from rightsdesk.kernel import clock, retention
from rightsdesk.lifecycle import rules

WRITE_BATCH = 25  # BatchWriteItem's limit


def _account(n: int, last_day: str, created: str) -> dict:
    pk = f"ACCOUNT#bench{n:07d}"
    due = int(rules.warn_at("default", last_day).timestamp())
    keys = retention.lifecycle_index_keys(due, pk, "ACCOUNT")
    return {
        "pk": {"S": pk},
        "sk": {"S": "ACCOUNT"},
        "account_id": {"S": pk[8:]},
        "account_class": {"S": "default"},
        "state": {"S": "active"},
        "email": {"S": f"bench-{n}@example.org"},
        "locale": {"S": "en"},
        "created_at": {"S": created},
        "last_active_day": {"S": last_day},
        "last_active_at": {"S": created},
        "next_due_at": {"N": str(due)},
        "gsi2pk": {"S": keys["gsi2pk"]},
        "gsi2sk": {"S": keys["gsi2sk"]},
        "gsi1pk": {"S": "ACCOUNTS#default"},
        "gsi1sk": {"S": f"{last_day}#{pk[8:]}"},
    }


def _seed(client, table: str, first: int, quiet: int, crossing: int) -> float:
    today = clock.now().date()
    created = clock.now().astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
    items = [_account(first + n, (today - timedelta(days=n % 27)).isoformat(), created) for n in range(quiet)]
    items += [_account(first + quiet + n, (today - timedelta(days=30)).isoformat(), created) for n in range(crossing)]
    started = time.perf_counter()
    for start in range(0, len(items), WRITE_BATCH):
        pending = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + WRITE_BATCH]]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None
    return time.perf_counter() - started


def measure(stack, sizes: tuple[int, ...] = (1_000, 10_000), crossing: int = 20) -> list[dict]:
    client = stack.client("dynamodb")
    table = "rightsdesk-local-RightsTable"
    rows, seeded, serial = [], 0, 0
    for size in sizes:
        seed_seconds = _seed(client, table, serial, size - seeded, crossing)
        serial += size - seeded + crossing
        seeded = size
        event = {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
        started = time.perf_counter()
        report = stack.invoke("LifecycleFunction", event)
        elapsed = time.perf_counter() - started
        assert report["counts"].get("warned") == crossing, report
        rows.append(
            {
                "accounts": size,
                "crossing": crossing,
                "items_read": report["items_read"],
                "queries": report["queries"],
                "run_ms": elapsed * 1000,
                "seed_s": seed_seconds,
            }
        )
        # The warned ones now wait for their deletion threshold: quiet from here on.
        seeded += crossing
    return rows


def section(rows: list[dict], skipped_100k: bool) -> str:
    header = "| accounts | crossing | items read | queries | run (ms) | seeding (s) |\n|---|---|---|---|---|---|\n"
    body = "\n".join(
        f"| {r['accounts']:,} | {r['crossing']} | {r['items_read']} | {r['queries']} | {r['run_ms']:.0f} "
        f"| {r['seed_s']:.1f} |"
        for r in rows
    )
    note = (
        "\n\nRun without 100k accounts (`.venv/bin/python -m bench --lifecycle-small`): `make bench` seeds "
        "them (about 90 s on this machine; the run itself takes under 2 s)."
        if skipped_100k
        else ""
    )
    return f"""## Lifecycle run: cost follows the accounts crossing a threshold, not the accounts

One LifecycleFunction run (its hourly event, handler called in a container of the local runner
against moto server) after seeding accounts as their daily activity write leaves them (last used 0
to 26 days ago, on the due index at their warning time) and {rows[0]["crossing"] if rows else 20} more
last used 30 days ago, whose warning is due. Items read = due-index entries + the accounts read
back (+1 for the run's state once one exists); one query per day bucket since the last run (the
first run starts on the table's creation day). Each warning is a mail queued and one transaction.

{header}{body}{note}
"""


def run_isolated(sizes: tuple[int, ...], crossing: int = 20) -> list[dict]:
    """measure() in a fresh interpreter with a LocalStack of its own: exact account counts."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "bench.lifecycle_run", ",".join(map(str, sizes)), str(crossing)],
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
    crossing = int(argv[1]) if len(argv) > 1 else 20
    with LocalStack(root / "template.yaml", gateway_port=0, moto_port=0, receiver_port=0, schedules=False) as stack:
        rows = measure(stack, sizes, crossing)
    # The handlers log to stdout: the result is the last line.
    sys.stdout.write("\n" + json.dumps(rows) + "\n")


if __name__ == "__main__":
    import sys

    _main(sys.argv[1:])
