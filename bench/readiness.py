"""`make bench`'s readiness sections: warm latency of every API route, a cold PublicApiFunction,
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
    table = _table(
        ["route", "function", "answered", "n", "p50 (ms)", "p99 (ms)"],
        [
            [
                r["route"] + (" *" if r["placeholder"] else ""),
                r["function"],
                r["status"],
                str(r["n"]),
                f"{r['p50_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
            ]
            for r in rows
        ],
    )
    return f"""## Every API route, warm

Each route's handler invoked in a warm container with an API Gateway event, after {routes.WARM_UP} warm-up calls;
moto answers over HTTP on loopback. Every call does its real work once (a fresh code, a fresh
request to cancel); `*` marks a route timed with placeholder values (see its status).

{table}"""


def cold_section(figures: dict[str, dict[str, float]]) -> str:
    rows = [
        [
            mode,
            *(
                f"{figures[mode][key]:.0f}"
                for key in ("import_ms", "first_submit_ms", "first_status_ms", "second_submit_ms")
            ),
        ]
        for mode in figures
    ]
    table = _table(
        ["botocore data", "import (ms)", "first submit (ms)", "first status (ms)", "second submit (ms)"], rows
    )
    return f"""## PublicApiFunction, cold

A fresh interpreter imports the handler and serves its first requests (median of 3). pynamodb opens
one connection per model class, each on a new botocore session; `rightsdesk.platform.sessions` lets them
share botocore's parsed data (endpoints.json, the DynamoDB model), which the first requests of a
cold function otherwise parse once per kind of item they touch.

{table}"""


def sizes_section(rows: list[dict], largest: list[tuple[str, int]]) -> str:
    if not rows:
        return "## Build sizes\n\n`.aws-sam/build` is missing: run `make build`."
    table = _table(
        ["artifact", "files", "unzipped", "zipped"],
        [[r["artifact"], str(r["files"]), _kib(r["bytes"]), _kib(r["zipped"])] for r in rows],
    )
    biggest = ", ".join(f"{name} {_kib(size)}" for name, size in largest)
    return f"""## Build sizes (`sam build`)

Every function ships only its own Python files; everything else is in CoreLayer (Lambda's limit is
250 MB unzipped for a function and its layers). The layer's largest packages: {biggest}.

{table}"""


def previous_load_section(report: Path) -> str:
    text = report.read_text() if report.exists() else ""
    if load.START in text and load.END in text:
        return text[text.index(load.START) : text.index(load.END) + len(load.END)]
    return f"{load.START}\n## Load without loss (`make load`)\n\nNot measured yet: run `make load`.\n{load.END}"


def previous_peer_section(report: Path) -> str | None:
    """The last `make load SHAPE=peer` figures: `make bench` never runs that shape, and its rewrite
    of the report keeps them."""
    text = report.read_text() if report.exists() else ""
    if load.PEER_START in text and load.PEER_END in text:
        return text[text.index(load.PEER_START) : text.index(load.PEER_END) + len(load.PEER_END)]
    return None


def run(root: Path, *, route_calls: int, load_requests: int) -> str:
    from bench.stacks import bench_stack

    # every caller is 127.0.0.1: the abuse limits are raised (local/loopback.py)
    with bench_stack(root) as stack:
        route_rows = routes.measure(stack, count=route_calls)
        cold_figures = cold.measure()
    if load_requests:
        with load.LocalRun() as base_url:
            load_md = load.section(load.run(base_url, total=load_requests))
    else:
        load_md = previous_load_section(load.REPORT)
    return (
        "\n\n".join(
            [
                routes_section(route_rows),
                cold_section(cold_figures),
                sizes_section(sizes.measure(), sizes.largest_packages()),
                load_md,
                *filter(None, [previous_peer_section(load.REPORT)]),
            ]
        )
        + "\n"
    )


API_FUNCTIONS = ("public_api", "controller_api")


def imports_note(rows: list[dict], target: float) -> str:
    def ratio(prefix: str) -> float | None:
        return next((r["ratio"] for r in rows if r["function"].startswith(prefix)), None)

    floor, batch_floor, api_floor = ratio("(floor)"), ratio("(batch floor)"), ratio("(API floor)")
    missed = [r["function"] for r in rows if not r["function"].startswith("(") and r["ratio"] >= target]
    api_missed = api_floor is not None and api_floor >= target and bool(set(missed) & set(API_FUNCTIONS))
    parts = [
        f"{len(missed)} of the functions miss the target: {', '.join(missed)}."
        if missed
        else "Every function meets the target."
    ]
    if floor is not None:
        parts.append(
            f"The floor row is what every function imports before a line of its own (the core's pynamodb "
            f"models, which bring botocore, and powertools' Logger and Metrics): {floor:.2f} times bare "
            "boto3. No function imports boto3 at load: the core's SQS, SES and KMS clients are botocore's "
            "(rightsdesk.platform.aws_clients), which spares s3transfer and boto3's resource layer. No function "
            "loads powertools' Tracer: the X-Ray SDK it imports built two botocore clients for its sampler "
            "on every cold start, and Lambda records its own segments without it (docs/decisions.md)."
        )
    if batch_floor is not None:
        parts.append(
            f"Queue and stream functions also load powertools' Batch utility (asyncio and every event class "
            f"powertools has): {batch_floor:.2f} times bare boto3 (the batch floor row). Above it each adds "
            "the core modules its records need, many small ones and no heavy library: the dispatcher "
            "delivery and webhooks, the notifier mail and MIME; own_requests contacts, consents, the "
            "registry and the subject's data."
        )
    if api_floor is not None:
        parts.append(
            f"The API functions ({', '.join(API_FUNCTIONS)}) also build the Event Handler with "
            f"validation, which imports pydantic: {api_floor:.2f} times bare boto3 with nothing of ours "
            "(the API floor row)"
            + (
                ", above the target before any route or model, so they cannot meet it "
                "without giving up the Event Handler's validation, which DESIGN.md chose. Above that floor: "
                "the core modules of their routes; the public API's form models (rightsdesk.intake.forms, "
                "about 20 ms of pydantic schema building) are built by the first submit or verify, which "
                "resolves the route's signature, not at load."
                if api_missed
                else "."
            )
        )
    parts.append(
        "Imported or built on first use instead of at load: powertools' idempotency utility (it imports "
        "boto3), its store and DynamoDB client; Jinja2 and Babel (pages and mail); the breach bookkeeping "
        "of the notifier; the breach and policy records of the dispatcher (only its two notice events "
        "need them). A function whose every invocation needs one pays it in its first invocation instead "
        "(the dispatcher and the notifier keep every record idempotent, the notifier renders every mail): "
        "for those the ratio is the import alone, not the whole cold start. Requests are loaded through "
        "rightsdesk.store.queries, which holds no pydantic model, so only the API functions import pydantic."
    )
    close = [r["function"] for r in rows if not r["function"].startswith("(") and abs(r["ratio"] - target) < 0.1]
    if close:
        parts.append(
            f"Within 0.1 of the target, where a rerun on a shared machine can land on either side: {', '.join(close)}."
        )
    return " ".join(parts)
