"""`rightsdesk accounts ...` and `rightsdesk lifecycle run`: the product's accounts as the lifecycle
sees them (activity, warnings, cancellations, holds), and the lifecycle run itself, in-process with
the operator's credentials (or against the local run with --local), exactly as LifecycleFunction
runs it. The thresholds are the ones this shell's environment names (ACCOUNT_WARNING_DAYS,
ACCOUNT_DELETION_DAYS, ACCOUNT_CLASSES, as the stack's parameters set them), else the defaults.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.console import Group, RenderableType

from rightsdesk.lifecycle import accounts
from rightsdesk.lifecycle import run as lifecycle_run
from rightsdesk.store import audit
from rightsdesk_cli.context import use
from rightsdesk_cli.output import JsonFlag, emit, short_time, table
from rightsdesk_cli.retention import DATE_FORMATS, utc

app = typer.Typer(help="Accounts of the product: activity, inactivity, cancellations, holds.", no_args_is_help=True)
lifecycle_app = typer.Typer(help="Account lifecycles: warnings, erasures, consent expiry.", no_args_is_help=True)

SHOWN_ITEMS = 50


@app.command("show")
def show(
    ctx: typer.Context,
    account_id: Annotated[str, typer.Argument(help="The product's account id.")],
    personal: Annotated[
        bool, typer.Option("--personal", help="Also show the holder's address and ids (kept until the erasure).")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """One account: its state, last active day, the next threshold and when, its hold and history."""
    state = use(ctx, json_output)
    account = accounts.get(account_id)
    data = accounts.view(account, personal=personal)
    data["history"] = [
        {"at": e.at.isoformat(), "action": e.action, "actor": e.actor, "from": e.from_status, "to": e.to_status}
        for e in audit.trail(account.pk)
    ]

    def render() -> RenderableType:
        facts = table(
            ["", ""],
            [[key, value] for key, value in data.items() if key != "history" and value is not None],
        )
        history = table(
            ["at", "action", "actor", "from", "to"],
            ([short_time(h["at"]), h["action"], h["actor"], h["from"], h["to"]] for h in data["history"]),
        )
        return Group(facts, history)

    emit(state, data, render)


@app.command("list")
def list_accounts(
    ctx: typer.Context,
    inactive_since: Annotated[
        datetime,
        typer.Option("--inactive-since", formats=DATE_FORMATS, help="Accounts not used since this day (UTC)."),
    ],
    account_class: Annotated[str | None, typer.Option("--class", help="Only this account class.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Accounts whose last activity was before a day, oldest first (per class, never a scan)."""
    state = use(ctx, json_output)
    day = utc(inactive_since).date().isoformat()  # type: ignore[union-attr]
    found = [accounts.view(a) for a in accounts.inactive_since(day, account_class)]
    data = {"inactive_since": day, "accounts": found}
    emit(
        state,
        data,
        lambda: table(
            ["account", "class", "state", "last active", "next", "due", "held"],
            (
                [
                    a["account_id"],
                    a["account_class"],
                    a["state"],
                    a["last_active_day"],
                    a["next_step"],
                    short_time(a["next_due_at"]),
                    "yes" if a["legal_hold"] else "",
                ]
                for a in found
            ),
            title=f"{len(found)} accounts inactive since {day}",
        ),
    )


@app.command("hold")
def hold(
    ctx: typer.Context,
    account_id: Annotated[str, typer.Argument(help="The product's account id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (a case or ticket reference; no personal data).")],
    until: Annotated[
        datetime | None,
        typer.Option("--until", formats=DATE_FORMATS, help="When the hold is expected to end (UTC)."),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """A legal hold: no warning and no erasure of the account until it is released."""
    state = use(ctx, json_output)
    account = accounts.place_hold(account_id, reason, actor=state.operator, until=utc(until))
    data = accounts.view(account)
    emit(state, data, lambda: f"account {account_id} is under a legal hold")


@app.command("release")
def release(
    ctx: typer.Context,
    account_id: Annotated[str, typer.Argument(help="The product's account id.")],
    json_output: JsonFlag = False,
) -> None:
    """End a hold: the account's thresholds apply again (one passed meanwhile acts at the next run)."""
    state = use(ctx, json_output)
    account = accounts.release_hold(account_id, actor=state.operator)
    data = accounts.view(account)
    emit(state, data, lambda: f"account {account_id} released; next: {data['next_step']} at {data['next_due_at']}")


def _render_run(report: dict) -> RenderableType:
    verb = "would be done" if report["dry_run"] else "done"
    parts: list = [
        f"lifecycle run at {report['now']} ({verb}): {report['buckets']} day buckets, "
        f"{report['queries']} queries, {report['items_read']} items read"
    ]
    if report["counts"]:
        parts.append(table(["outcome", "count"], sorted(report["counts"].items())))
    if report["items"]:
        shown = report["items"][:SHOWN_ITEMS]
        parts.append(
            table(
                ["account or contact", "step", "why", "due"],
                (
                    [i.get("account_id") or i.get("contact"), i["step"], i["why"], short_time(i.get("due_at"))]
                    for i in shown
                ),
            )
        )
        if len(report["items"]) > SHOWN_ITEMS:
            parts.append(f"... and {len(report['items']) - SHOWN_ITEMS} more (--json lists them all)")
    else:
        parts.append("nothing due")
    if report["held"]:
        parts.append(f"skipped under a legal hold: {', '.join(report['held'])}")
    if report["interrupted"]:
        parts.append(f"stopped early ({report['interrupted']}); the next run resumes there")
    return Group(*parts)


@lifecycle_app.command("run")
def run(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Who would be warned or erased now, and why; change nothing.")
    ] = False,
    max_items: Annotated[int | None, typer.Option("--max-items", min=1, help="Stop after this many.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Warn, erase and expire what is due now (LifecycleFunction's hourly work, run from here)."""
    state = use(ctx, json_output)
    if not dry_run:
        from rightsdesk_cli.wiring import connect_mail

        connect_mail(state, hash_key=True)  # warning mails, erasure requests routed, subjects' hashes
    report = lifecycle_run.run(dry_run=dry_run, max_items=max_items).as_dict()
    emit(state, report, lambda: _render_run(report))


@lifecycle_app.command("file-consents")
def file_consents(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count them; change nothing.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Once, after upgrading: put consents granted before the lifecycle existed on its due index,
    so they expire five years after their grant (a scan of the table; safe to repeat)."""
    from rightsdesk.lifecycle import backfill

    state = use(ctx, json_output)
    counts = backfill.file_granted_consents(dry_run=dry_run)
    emit(state, {"dry_run": dry_run, **counts}, lambda: table(["", "count"], sorted(counts.items())))
