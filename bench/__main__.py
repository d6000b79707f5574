"""`make bench`: measure, print, and refresh the table in docs/benchmarks.md."""

from __future__ import annotations

import argparse
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from bench import api_latency, imports

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
    parser.add_argument("--import-runs", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)

    import_rows = imports.measure(["public_api", "notifier"], runs=args.import_runs)

    from local.stack import LocalStack

    with LocalStack(ROOT / "template.yaml", gateway_port=0, moto_port=0, receiver_port=0, schedules=False) as stack:
        latency_rows = api_latency.measure(stack, count=args.requests)

    imports_md = _table(
        ["function", "import (ms)", "bare boto3 (ms)", "ratio", f"target < {IMPORT_TARGET}"],
        [[r["function"], f"{r['import_s'] * 1000:.0f}", f"{r['boto3_s'] * 1000:.0f}", f"{r['ratio']:.2f}",
          "yes" if r["ratio"] < IMPORT_TARGET else "**no**"] for r in import_rows],
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

Median of {args.import_runs} fresh interpreters; the import of the function module (with the core
and its libraries) against a bare `import boto3` in the same run. Target: ratio under {IMPORT_TARGET}.

{imports_md}

## Public API, warm, in-process against moto server

The handler is called directly with API Gateway events, as Lambda calls a warm container; moto
answers over HTTP on loopback. The first 5 calls of each kind are not counted.

{latency_md}

Caveats: moto is slower than DynamoDB for transactions and faster for everything else (no
network distance); the figures compare versions of this code, not production latency.
"""
    print(report)
    if not args.no_write:
        REPORT.write_text(report)
        print(f"wrote {REPORT.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
