"""`make bench`'s sections for issue 7: warm latency of every API route, a cold PublicApiFunction,
what `sam build` made, and load without loss (kept from the last `make load` unless `--load N`)."""

from __future__ import annotations

from pathlib import Path

from bench import cold, load, routes, sizes


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _kib(size: int) -> str:
    return f"{size / 1024:,.0f} KiB" if size < 1024 * 1024 else f"{size / 1024 / 1024:,.1f} MiB"


def routes_section(rows: list[dict]) -> str:
    table = _table(["route", "function", "answered", "n", "p50 (ms)", "p99 (ms)"],
                   [[r["route"] + (" *" if r["placeholder"] else ""), r["function"], r["status"], str(r["n"]),
                     f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}"] for r in rows])
    return f"""## Every API route, warm

Each route's handler invoked directly with an API Gateway event, after {routes.WARM_UP} warm-up calls;
moto answers over HTTP on loopback. Every call does its real work once (a fresh code, a fresh
request to cancel); `*` marks a route timed with placeholder values (see its status).

{table}"""


def cold_section(figures: dict[str, dict[str, float]]) -> str:
    rows = [[mode, *(f"{figures[mode][key]:.0f}" for key in
                     ("import_ms", "first_submit_ms", "first_status_ms", "second_submit_ms"))] for mode in figures]
    table = _table(["botocore data", "import (ms)", "first submit (ms)", "first status (ms)", "second submit (ms)"], rows)
    return f"""## PublicApiFunction, cold

A fresh interpreter imports the handler and serves its first requests (median of 3). pynamodb opens
one connection per model class, each on a new botocore session; `rightsdesk.sessions` lets them
share botocore's parsed data (endpoints.json, the DynamoDB model), which the first requests of a
cold function otherwise parse once per kind of item they touch.

{table}"""


def sizes_section(rows: list[dict], largest: list[tuple[str, int]]) -> str:
    if not rows:
        return "## Build sizes\n\n`.aws-sam/build` is missing: run `make build`."
    table = _table(["artifact", "files", "unzipped", "zipped"],
                   [[r["artifact"], str(r["files"]), _kib(r["bytes"]), _kib(r["zipped"])] for r in rows])
    biggest = ", ".join(f"{name} {_kib(size)}" for name, size in largest)
    return f"""## Build sizes (`sam build`)

Every function ships only its own Python files; everything else is in CoreLayer (Lambda's limit is
250 MB unzipped for a function and its layers). The layer's largest packages: {biggest}.

{table}"""


def previous_load_section(report: Path) -> str:
    text = report.read_text() if report.exists() else ""
    if load.START in text and load.END in text:
        return text[text.index(load.START): text.index(load.END) + len(load.END)]
    return f"{load.START}\n## Load without loss (`make load`)\n\nNot measured yet: run `make load`.\n{load.END}"


def run(root: Path, *, route_calls: int, load_requests: int) -> str:
    from local.stack import LocalStack

    with LocalStack(root / "template.yaml", gateway_port=0, moto_port=0, receiver_port=0, schedules=False) as stack:
        route_rows = routes.measure(stack, count=route_calls)
        cold_figures = cold.measure()
    if load_requests:
        with load.LocalRun() as base_url:
            load_md = load.section(load.run(base_url, total=load_requests))
    else:
        load_md = previous_load_section(load.REPORT)
    return "\n\n".join([routes_section(route_rows), cold_section(cold_figures),
                        sizes_section(sizes.measure(), sizes.largest_packages()), load_md]) + "\n"


def imports_note(rows: list[dict], target: float) -> str:
    floor = next((r for r in rows if r["function"].startswith("(floor)")), None)
    missed = [r["function"] for r in rows if not r["function"].startswith("(") and r["ratio"] >= target]
    if floor is None or not missed:
        return "Every function meets the target."
    return (f"{len(missed)} functions miss the target. The floor row is what any function with powertools' "
            f"Logger, Metrics and Tracer imports before a line of its own: {floor['ratio']:.2f} times bare boto3. "
            "Most of it is the X-Ray SDK, which builds two botocore clients (parsing endpoints.json each time) for "
            "its sampler when it is imported, although Lambda samples itself; then pydantic and the event handler's "
            "validation (the API functions), Jinja2 and Babel (the public API's pages, mail), and the idempotency "
            "layer's DynamoDB client. Lazy imports of our own modules cannot go below the floor: meeting the "
            "target means tracing without the X-Ray SDK in the function (Lambda's own segments, or OpenTelemetry), "
            "a decision recorded in docs/decisions.md.")
