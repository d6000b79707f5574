"""`rightsdesk breach ...`: declare a personal-data breach, follow its notices and its 72-hour clock.

Declaring writes the incident and one notice per recipient, then queues the mails (MailQueue ->
NotifierFunction -> SES); the notifier records each notice's outcome. Controllers delivering by webhook also
get a `breach.notice` event, whose outcome the dispatcher records. Nothing here prints a recipient's
address: controllers are shown by id, subjects by the first characters of their keyed hash.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rightsdesk.kernel import clock
from rightsdesk.notices import breaches
from rightsdesk.store.items.notices import IncidentItem
from rightsdesk_cli.context import Context, use
from rightsdesk_cli.moments import parse_moment
from rightsdesk_cli.output import JsonFlag, cell_text, emit, emit_history, note, table
from rightsdesk_cli.wiring import connect_mail

app = typer.Typer(
    help="Personal-data breaches: declare, follow the notices, record the authority.", no_args_is_help=True
)

SUBJECT_KEY_CHARS = 12
# Each look counts the incident's notices (one query); every few seconds is plenty for a person.
WATCH_SECONDS = 2


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _progress(state: Context, total: int, label: str) -> Progress:
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=state.console,
        transient=True,
        disable=state.json or total < 2 or not state.console.is_terminal,
    )


# ------------------------------------------------------------------ declare


@app.command("declare")
def declare(
    ctx: typer.Context,
    detected_at: Annotated[
        str, typer.Option("--detected-at", help="When the breach was detected (ISO 8601, UTC), or `now`.")
    ],
    summary: Annotated[str, typer.Option("--summary", help="What happened, as the recipients will read it.")],
    categories: Annotated[
        str, typer.Option("--categories", help="Data categories, comma-separated: chat_history,email,...")
    ],
    controllers: Annotated[
        str | None, typer.Option("--controllers", help="Affected controller ids, comma-separated.")
    ] = None,
    all_controllers: Annotated[bool, typer.Option("--all-controllers", help="Every controller is affected.")] = False,
    high_risk: Annotated[
        bool, typer.Option("--high-risk", help="Likely a high risk to people's rights (GDPR Art. 34).")
    ] = False,
    notify_subjects: Annotated[
        bool, typer.Option("--notify-subjects", help="Also write to the people concerned (needs --high-risk).")
    ] = False,
    consequences: Annotated[str | None, typer.Option("--consequences", help="Likely consequences.")] = None,
    measures: Annotated[str | None, typer.Option("--measures", help="Measures taken or proposed.")] = None,
    contact: Annotated[
        str | None,
        typer.Option("--contact", help="Where recipients get more information (default: the sender address)."),
    ] = None,
    delay_reason: Annotated[
        str | None,
        typer.Option(
            "--delay-reason",
            help="Why the notices come later than 72 hours after detection (GDPR Art. 33(1)); required then.",
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Declare a breach: record it with its 72-hour deadlines and queue one notice per recipient."""
    if bool(controllers) == all_controllers:
        raise typer.BadParameter("name the affected controllers with --controllers, or pass --all-controllers")
    state = connect_mail(use(ctx, json_output))
    from rightsdesk.platform.config import settings

    declaration = breaches.Declaration(
        detected_at=parse_moment(detected_at, "detected_at"),
        summary=summary,
        categories=_csv(categories),
        contact=contact or settings().mail_from,
        controller_ids=None if all_controllers else _csv(controllers),
        high_risk=high_risk,
        notify_subjects=notify_subjects,
        consequences=consequences,
        measures=measures,
        delay_reason=delay_reason,
        actor=state.operator,
    )
    with _progress(state, 2, "queueing notices") as bar:
        task = bar.add_task("notices", total=None)
        incident = breaches.declare(declaration, progress=lambda n: bar.advance(task, n))
    data = _status(incident, listed=False)
    emit(state, data, lambda: _render_status(data))
    note(state, f"follow it with: rightsdesk breach status {incident.incident_id} --watch")


# ------------------------------------------------------------------ status


def _recipient(notice) -> dict:
    shown = notice.recipient if notice.kind == breaches.CONTROLLER else notice.recipient[:SUBJECT_KEY_CHARS]
    return {
        "kind": notice.kind,
        "recipient": shown,
        "status": notice.status,
        "sent_at": clock.isoformat(notice.sent_at) if notice.sent_at else None,
        "updated_at": clock.isoformat(notice.updated_at),
        # the breach.notice webhook (controllers delivering by webhook): delivered | failed | disabled
        "webhook": notice.webhook,
        "webhook_at": clock.isoformat(notice.webhook_at) if notice.webhook_at else None,
    }


def _status(incident: IncidentItem, *, listed: bool = True) -> dict:
    now = clock.now()
    counts = breaches.tally(incident)
    data = {
        "incident": {
            "incident_id": incident.incident_id,
            "detected_at": clock.isoformat(incident.detected_at),
            "declared_at": clock.isoformat(incident.declared_at),
            "categories": list(incident.categories),
            "controllers": list(incident.controller_ids),
            "high_risk": bool(incident.high_risk),
            "notify_subjects": bool(incident.notify_subjects),
            "authority_notified_at": clock.isoformat(incident.authority_notified_at)
            if incident.authority_notified_at
            else None,
            "authority_reference": incident.authority_reference,
            "delay_reasons": breaches.delay_reasons(incident),
            "webhooks_queued": int(incident.webhooks_queued or 0),
            "webhooks_delivered": sum(
                1 for outcome in breaches.webhook_outcomes(incident).values() if outcome == breaches.DELIVERED
            ),
        },
        # state: open | met_on_time | met_late | missed (rightsdesk.kernel.deadline_state)
        "deadlines": [
            {
                **row,
                "due_at": clock.isoformat(row["due_at"]),
                "met_at": clock.isoformat(row["met_at"]) if row["met_at"] else None,
            }
            for row in breaches.deadlines(incident, counts, now)
        ],
        "counts": counts,
    }
    if listed:
        data["recipients"] = [_recipient(notice) for notice in breaches.notices(incident.incident_id)]
    return data


def _left(seconds: int) -> str:
    sign, seconds = ("overdue by " if seconds < 0 else "in "), abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    return sign + (f"{days}d " if days else "") + f"{hours}h {rest // 60:02d}m"


def _done(counts: dict) -> tuple[int, int]:
    total = sum(counts["total"].values())
    return total - counts["total"][breaches.PENDING], total


def _render_status(data: dict, *, all_recipients: bool = False) -> RenderableType:
    incident = data["incident"]
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    authority = (
        f"notified {incident['authority_notified_at']} (reference {incident['authority_reference']})"
        if incident["authority_notified_at"]
        else "not recorded"
    )
    for label, value in (
        ("incident", incident["incident_id"]),
        ("detected", incident["detected_at"]),
        ("declared", incident["declared_at"]),
        ("categories", incident["categories"]),
        ("controllers", incident["controllers"]),
        ("high risk", "yes" if incident["high_risk"] else "no"),
        ("subjects notified", "yes" if incident["notify_subjects"] else "no"),
        ("authority", authority),
        (
            "webhooks",
            f"{incident['webhooks_delivered']} of {incident['webhooks_queued']} delivered"
            if incident["webhooks_queued"]
            else "none queued",
        ),
    ):
        facts.add_row(label, cell_text(value))
    deadlines = table(
        ("deadline", "due", "state", "met at", "reasons for the delay"),
        (
            [
                d["deadline"],
                d["due_at"],
                d["label"] if d["state"] != "open" else f"open ({_left(d['seconds_left'])})",
                d["met_at"],
                d["delay_reason"],
            ]
            for d in data["deadlines"]
        ),
        title="72-hour deadlines",
    )
    counts = data["counts"]
    tally = table(
        ("recipients", *breaches.STATUSES, "total"),
        (
            [kind, *[counts[kind][s] for s in breaches.STATUSES], sum(counts[kind].values())]
            for kind in (*breaches.KINDS, "total")
        ),
        title="notices",
    )
    done, total = _done(counts)
    bar = Progress(TextColumn("done"), BarColumn(), MofNCompleteColumn())
    bar.add_task("done", total=max(total, 1), completed=done)
    parts: list = [facts, "", deadlines, tally, bar.get_renderable()]
    recipients = data.get("recipients")
    if recipients:
        shown = (
            recipients
            if all_recipients
            else [r for r in recipients if r["kind"] == breaches.CONTROLLER or r["status"] != breaches.SENT]
        )
        parts += [
            "",
            table(
                ("kind", "recipient", "status", "sent", "webhook"),
                ([r["kind"], r["recipient"], r["status"], r["sent_at"], r["webhook"]] for r in shown[:200]),
                title="recipients" + ("" if all_recipients else " (controllers, and subjects not sent)"),
            ),
        ]
        if len(shown) > 200:
            parts.append(f"... and {len(shown) - 200} more (--json lists them all)")
    return Group(*parts)


@app.command("status")
def status(
    ctx: typer.Context,
    incident_id: Annotated[str, typer.Argument(help="The incident id (inc_...).")],
    watch: Annotated[bool, typer.Option("--watch", help="Show a progress bar until no notice is pending.")] = False,
    timeout: Annotated[int, typer.Option("--timeout", min=1, help="Stop watching after this many seconds.")] = 600,
    all_recipients: Annotated[bool, typer.Option("--all", help="List every recipient, sent ones included.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Sent / pending / failed / suppressed per recipient, and the time left to each deadline."""
    state = use(ctx, json_output)
    incident = breaches.load(incident_id)
    if watch and not state.json:
        _watch(state, incident, timeout)
        incident.refresh()
    data = _status(incident)
    emit(state, data, lambda: _render_status(data, all_recipients=all_recipients))


def _watch(state: Context, incident: IncidentItem, timeout: int) -> None:
    deadline = time.monotonic() + timeout
    done, total = _done(breaches.tally(incident, record=False))
    with Progress(
        TextColumn("sending notices"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=state.console,
        transient=True,
    ) as bar:
        task = bar.add_task("notices", total=max(total, 1), completed=done)
        while done < total and time.monotonic() < deadline:
            time.sleep(WATCH_SECONDS)
            done, total = _done(breaches.tally(incident, record=False))
            bar.update(task, completed=done, total=max(total, 1))


# ------------------------------------------------------------------ the rest


@app.command("authority-notified")
def authority_notified(
    ctx: typer.Context,
    incident_id: Annotated[str, typer.Argument(help="The incident id (inc_...).")],
    reference: Annotated[str, typer.Option("--reference", help="The authority's reference (case number).")],
    at: Annotated[str, typer.Option("--at", help="When the authority was notified (ISO 8601, UTC), or `now`.")],
    delay_reason: Annotated[
        str | None,
        typer.Option(
            "--delay-reason", help="Why later than 72 hours after detection (GDPR Art. 33(1)); required then."
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Record that the supervisory authority was notified (once; it goes on the audit trail)."""
    state = use(ctx, json_output)
    incident = breaches.authority_notified(
        incident_id, reference=reference, at=parse_moment(at, "at"), delay_reason=delay_reason, actor=state.operator
    )
    data = _status(incident, listed=False)
    emit(state, data, lambda: _render_status(data))


@app.command("explain-delay")
def explain_delay(
    ctx: typer.Context,
    incident_id: Annotated[str, typer.Argument(help="The incident id (inc_...).")],
    deadline: Annotated[
        str, typer.Option("--deadline", help="controllers, authority or subjects: a deadline met late or missed.")
    ],
    reason: Annotated[str, typer.Option("--reason", help="The reasons for the delay (GDPR Art. 33(1)).")],
    json_output: JsonFlag = False,
) -> None:
    """Record why a notification came later than 72 hours after detection (once per deadline)."""
    state = use(ctx, json_output)
    incident = breaches.explain_delay(incident_id, deadline, reason=reason, actor=state.operator)
    data = _status(incident, listed=False)
    emit(state, data, lambda: _render_status(data))


@app.command("resend")
def resend(
    ctx: typer.Context,
    incident_id: Annotated[str, typer.Argument(help="The incident id (inc_...).")],
    json_output: JsonFlag = False,
) -> None:
    """Queue again every notice still pending or failed; a sent one is never sent twice."""
    state = connect_mail(use(ctx, json_output))
    operator = state.operator  # who, before anything is queued: nothing goes out unattributed
    with _progress(state, 2, "queueing notices") as bar:
        task = bar.add_task("notices", total=None)
        queued = breaches.resend(incident_id, actor=operator, progress=lambda n: bar.advance(task, n))
    emit(state, {"incident_id": incident_id, "queued": queued}, lambda: f"queued {queued} notices again")


@app.command("history")
def history(
    ctx: typer.Context,
    incident_id: Annotated[str, typer.Argument(help="The incident id (inc_...).")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="Events to show at most.")] = 50,
    json_output: JsonFlag = False,
) -> None:
    """The incident's audit trail, newest first: declared, authority recorded, resends, webhooks, warnings."""
    state = use(ctx, json_output)
    emit_history(state, ("incident_id", incident_id), breaches.history(incident_id, limit), ("cause",))


@app.command("list")
def list_incidents(
    ctx: typer.Context,
    days: Annotated[int, typer.Option("--days", min=1, help="Incidents detected in the last N days.")] = 30,
    json_output: JsonFlag = False,
) -> None:
    """Recent incidents, newest last, with their notice counts."""
    from datetime import timedelta

    state = use(ctx, json_output)
    rows = []
    for incident in breaches.recent(since=timedelta(days=days)):
        counts = breaches.tally(incident)["total"]
        rows.append(
            {
                "incident_id": incident.incident_id,
                "detected_at": clock.isoformat(incident.detected_at),
                "due_at": clock.isoformat(min(incident.controllers_due_at, incident.authority_due_at)),
                "authority_recorded": incident.authority_notified_at is not None,
                **counts,
            }
        )
    emit(
        state,
        {"incidents": rows},
        lambda: (
            table(
                ("incident", "detected", "due", "authority", *breaches.STATUSES),
                (
                    [
                        r["incident_id"],
                        r["detected_at"],
                        r["due_at"],
                        "recorded" if r["authority_recorded"] else "-",
                        *[r[s] for s in breaches.STATUSES],
                    ]
                    for r in rows
                ),
            )
            if rows
            else "no incidents"
        ),
    )
