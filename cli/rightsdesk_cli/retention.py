"""`rightsdesk retention ...`: run or preview the retention sweep, and prove deletions to an auditor.

The sweep runs here, in-process, with the operator's credentials (or against the local run with
--local), exactly as RetentionFunction runs it; the stack's stream handler audits what it deletes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

import typer
from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rightsdesk.kernel import clock, retention
from rightsdesk.retention import sweeper
from rightsdesk.store.audit import operator_view
from rightsdesk.store.deletion import Cause, events
from rightsdesk_cli.context import use
from rightsdesk_cli.output import JsonFlag, emit, note, short_time, table

app = typer.Typer(
    help="Retention: the sweep that deletes and purges what is due, and its audit trail.", no_args_is_help=True
)

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"]
SHOWN_ITEMS = 50
OUTCOME_COLUMNS = (
    "delete",
    "purge",
    "deleted",
    "purged",
    "held",
    "not_due",
    "gone",
    "changed",
    "unknown_rule",
    "error",
)


def utc(moment: datetime | None) -> datetime | None:
    """typer parses naive datetimes; the operator means UTC, as every time rightsdesk shows."""
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _then(rule: str) -> str:
    try:
        return retention.rule(retention.Rule(rule)).then
    except ValueError:
        return "?"


def _by_rule_table(report: dict) -> RenderableType:
    counts = report["by_rule"]
    columns = [c for c in OUTCOME_COLUMNS if any(c in per_rule for per_rule in counts.values())]
    rows = ([rule, _then(rule), *[per_rule.get(c, 0) for c in columns]] for rule, per_rule in counts.items())
    return table(["rule", "then", *columns], rows)


def _render_sweep(report: dict) -> RenderableType:
    verb = "would go" if report["dry_run"] else "done"
    parts: list = [
        f"retention sweep at {report['now']} ({verb}): {report['buckets']} day buckets, "
        f"{report['queries']} queries, {report['items_read']} items read"
    ]
    parts.append(_by_rule_table(report) if report["by_rule"] else "nothing due")
    if report["items"]:
        shown = report["items"][:SHOWN_ITEMS]
        parts.append(
            table(
                ["due", "rule", "action", "record", "item"],
                ([short_time(i["due_at"]), i["rule"], i["action"], i["pk"], i["sk"]] for i in shown),
            )
        )
        if len(report["items"]) > SHOWN_ITEMS:
            parts.append(f"... and {len(report['items']) - SHOWN_ITEMS} more (--json lists them all)")
    if report["held"]:
        parts.append(f"skipped under a legal hold: {', '.join(report['held'])}")
    if report["interrupted"]:
        parts.append(f"stopped early ({report['interrupted']}); the next sweep resumes there")
    return Group(*parts)


@app.command("sweep")
def sweep(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would go, by rule; change nothing.")] = False,
    max_items: Annotated[int | None, typer.Option("--max-items", min=1, help="Stop after this many due items.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Delete or purge everything that is due now (the RetentionFunction's work, run from here)."""
    state = use(ctx, json_output)
    # Who ran it, on the audit events the sweep writes (a dry run writes none: no identity needed).
    actor = sweeper.ACTOR if dry_run else state.operator.acting_as(sweeper.ACTOR)
    if state.json:
        report = sweeper.sweep(dry_run=dry_run, max_items=max_items, actor=actor)
    else:
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        with progress:
            task = progress.add_task("previewing" if dry_run else "sweeping", total=0)

            def advance(kind: str, n: int) -> None:
                if kind == "found":
                    progress.update(task, total=(progress.tasks[0].total or 0) + n)
                else:
                    progress.advance(task, n)

            report = sweeper.sweep(dry_run=dry_run, max_items=max_items, progress=advance, actor=actor)
    data = report.as_dict()
    emit(state, data, lambda: _render_sweep(data))


@app.command("audit")
def audit(
    ctx: typer.Context,
    since: Annotated[datetime, typer.Option("--since", formats=DATE_FORMATS, help="From this date (UTC).")],
    until: Annotated[
        datetime | None, typer.Option("--until", formats=DATE_FORMATS, help="Up to this date (UTC); default now.")
    ] = None,
    cause: Annotated[Cause | None, typer.Option("--cause", help="Only deletions with this cause.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Deletions and purges of personal data in a period, by cause: the proof for an auditor.

    One query per month of the period (GSI1 AUDIT#<yyyy-mm>), never a scan.
    """
    state = use(ctx, json_output)
    start, end = utc(since), utc(until) or clock.now()
    if start > end:
        raise typer.BadParameter("--since is after --until", param_hint="--since")
    rows = [
        {
            "at": clock.isoformat(event.at),
            "action": event.action,
            "cause": event.cause,
            "rule": event.rule,
            "item": event.item_kind,
            "record": event.pk,
            "from_status": event.from_status,
            "actor": event.actor,
            "operator": operator_view(event),
        }
        for event in events(start, end, cause)
    ]
    totals: dict[str, int] = {}
    for row in rows:
        key = f"{row['action']}:{row['cause']}"
        totals[key] = totals.get(key, 0) + 1
    data = {
        "since": clock.isoformat(start),
        "until": clock.isoformat(end),
        "cause": cause.value if cause else None,
        "totals": totals,
        "events": rows,
    }

    def render() -> RenderableType:
        if not rows:
            return f"no deletions recorded between {data['since']} and {data['until']}"
        summary = table(["action", "cause", "count"], ([*key.split(":"), n] for key, n in sorted(totals.items())))
        listing = table(
            ["at", "action", "cause", "rule", "item", "record", "from status"],
            ([r["at"], r["action"], r["cause"], r["rule"], r["item"], r["record"], r["from_status"]] for r in rows),
        )
        return Group(summary, listing)

    emit(state, data, render)
    if not rows and not state.json:
        note(
            state,
            "deletion events exist from the moment DeletionAuditFunction runs; TTL deletions show up to two days late",
        )
