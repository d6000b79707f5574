"""`make bench`: measure, print, and refresh the table in docs/benchmarks.md."""

from __future__ import annotations

import argparse
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from bench import (
    api_latency,
    aws_calls,
    connectors_erasure,
    delivery,
    imports,
    lifecycle_run,
    notices,
    readiness,  # every route, a cold start, build sizes, load
    retention_sweep,
)

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "benchmarks.md"
IMPORT_TARGET = 1.5


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--requests", type=int, default=200, help="submissions (and verifications) to time")
    parser.add_argument("--import-runs", type=int, default=8)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--routed", type=int, default=50, help="verified requests to route for the throughput figure")
    parser.add_argument(
        "--retention-100k",
        action="store_true",
        help="also sweep with 100k live items (seeding them into moto takes minutes)",
    )
    parser.add_argument(
        "--lifecycle-small",
        action="store_true",
        help="run the lifecycle with 1k and 10k accounts only (seeding 100k into moto takes about 90 s)",
    )
    parser.add_argument("--notices", type=int, default=1000, help="breach recipients for the notifier figures")
    parser.add_argument(
        "--notices-10k",
        action="store_true",
        help="also send 10k breach notices (about a quarter of an hour on 2 cores)",
    )
    parser.add_argument("--route-calls", type=int, default=30, help="timed calls per API route")
    parser.add_argument(
        "--load",
        type=int,
        default=0,
        help="also run `make load` with this many requests (default: keep its last figures)",
    )
    args = parser.parse_args(argv)

    import_rows = imports.measure_paired(imports.functions(), runs=args.import_runs)
    delivery.record_calls()  # before any stack: its containers record their AWS calls from the start

    from bench.stacks import bench_stack  # after the import bench: the local runner stays out of its numbers

    with bench_stack(ROOT) as stack:
        latency_rows = api_latency.measure(stack, count=args.requests)

    # In a process and a table of its own: the live-item counts are exact.
    sizes = (1_000, 10_000, 100_000) if args.retention_100k else (1_000, 10_000)
    retention_md = retention_sweep.section(retention_sweep.run_isolated(sizes), not args.retention_100k)
    account_sizes = (1_000, 10_000) if args.lifecycle_small else (1_000, 10_000, 100_000)
    lifecycle_md = lifecycle_run.section(lifecycle_run.run_isolated(account_sizes), args.lifecycle_small)
    # A process of its own with its own moto: the stores' sizes are exact, and its calls are recorded.
    connectors_md = connectors_erasure.section(connectors_erasure.run_isolated())

    # Fresh stacks: the sweep must purge only the requests it counts, and moto's transactions slow
    # down as its table grows.
    with bench_stack(ROOT) as stack:
        writes = delivery.writes_per_request(stack)
    with bench_stack(ROOT) as stack:
        delivery_md = delivery.section(delivery.routing_throughput(stack, args.routed), writes)
    # A process of its own: recording every call hooks botocore for the rest of the process.
    calls_md = aws_calls.section(aws_calls.run_isolated())

    # Processes of their own: the notifier's memory and calls are measured without moto in them.
    notices_md = notices.section(
        notices.run_isolated(args.notices), notices.run_isolated(10_000) if args.notices_10k else None
    )

    readiness_md = readiness.run(ROOT, route_calls=args.route_calls, load_requests=args.load)

    imports_md = _table(
        ["function", "import (CPU ms)", "bare boto3 (CPU ms)", "ratio", f"target < {IMPORT_TARGET}"],
        [
            [
                r["function"],
                f"{r['import_s'] * 1000:.0f}",
                f"{r['boto3_s'] * 1000:.0f}",
                f"{r['ratio']:.2f}",
                "yes" if r["ratio"] < IMPORT_TARGET else "**no**",
            ]
            for r in import_rows
        ],
    )
    latency_md = _table(
        ["operation", "n", "p50 (ms)", "p99 (ms)"],
        [[r["operation"], str(r["n"]), f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}"] for r in latency_rows],
    )
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}"
    report = f"""# Benchmarks

Produced by `make bench` on {when} ({machine}, 2 cores). Regenerate after changing a hot path.

## Cold-start proxy: module import time

Each function's module import (with the core and its libraries) and a bare `import boto3`, in
alternating fresh interpreters, {args.import_runs} pairs, each timed as the CPU time of the import; the ratio is
the median of the pairs' ratios, so both sides see the same machine load. Target: ratio under {IMPORT_TARGET}.

{imports_md}

{readiness.imports_note(import_rows, IMPORT_TARGET)}

## Public API, warm, against moto server

The handler is invoked with API Gateway events in a warm container of the local runner (one JSON
round trip over a socket, as Lambda calls a warm environment, without the gateway's HTTP); moto
answers over HTTP on loopback, from its own process. The first 5 calls of each kind are not counted.

{latency_md}

Caveats: moto is slower than DynamoDB for transactions and faster for everything else (no
network distance); the figures compare versions of this code, not production latency.

{retention_md}
{lifecycle_md}
{connectors_md}
{delivery_md}
{calls_md}

{notices_md}
{readiness_md}"""
    print(report)
    if not args.no_write:
        REPORT.write_text(report)
        print(f"wrote {REPORT.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
