"""`rightsdesk requests ...`: what the operator sees of subjects' requests.

Listings carry no personal data. `show --reveal` is the one way to read a subject's fields, and
it is written to the request's audit trail before anything is displayed.
"""

from __future__ import annotations

from itertools import chain, islice
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table

from rightsdesk.intake import submissions
from rightsdesk.kernel import clock, deadline_state
from rightsdesk.kernel.delivery_mode import DELIVERY_MODES
from rightsdesk.kernel.errors import NotFound
from rightsdesk.kernel.status import Status
from rightsdesk.own_data import own_requests
from rightsdesk.routing import controller_lookup
from rightsdesk.store import audit, queries
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.requests import RequestItem
from rightsdesk_cli.context import use
from rightsdesk_cli.moments import parse_period_end
from rightsdesk_cli.output import JsonFlag, cell_text, emit, note, short_time, table, who
from rightsdesk_cli.wiring import connect_mail

app = typer.Typer(
    help="Subjects' requests: list, inspect, and resolve those about the operator's own data.", no_args_is_help=True
)

LIST_COLUMNS = ("request id", "controller", "type", "status", "created", "due", "flags")


def _flags(item: RequestItem) -> list[str]:
    markers = list(item.flags or [])
    if item.legal_hold is not None:
        markers.append("legal_hold")
    if item.personal_purged_at is not None:
        markers.append("purged")
    return markers


def _row(item: RequestItem) -> dict:
    view = queries.skeleton(item)
    return {
        "request_id": view["request_id"],
        "controller_id": view["controller_id"],
        "type": view["request_type"],
        "status": view["status"],
        "created_at": view["created_at"],
        "due_at": view["due_at"],
        "flags": _flags(item),
    }


@app.command("list")
def list_requests(
    ctx: typer.Context,
    controller: Annotated[str | None, typer.Option("--controller", help="Only this controller's requests.")] = None,
    status: Annotated[Status | None, typer.Option("--status", help="Only requests in this status.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many requests.")] = 100,
    route: Annotated[
        str | None,
        typer.Option(
            "--route",
            help="Only controllers with this delivery: webhook, email, pull, or internal "
            "(the operator queue: requests about the operator's own data).",
        ),
    ] = None,
    overdue: Annotated[
        bool,
        typer.Option(
            "--overdue",
            help="Only open requests past their due date (an extension moves it only while it has not passed).",
        ),
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """List requests per controller (from the controller index), by status, oldest first."""
    state = use(ctx, json_output)
    if controller is not None and controller_lookup.get_controller(controller) is None:
        raise NotFound(f"no controller {controller}")
    if route is not None and route not in DELIVERY_MODES:
        raise typer.BadParameter(f"one of {', '.join(DELIVERY_MODES)}", param_hint="--route")
    # One more than asked tells whether the listing was cut.
    if route is None and not overdue:
        found = list(queries.list_requests(controller_id=controller, status=status, limit=limit + 1))
    else:
        found = list(islice(_filtered(controller, status, route, overdue), limit + 1))
    rows = [_row(item) for item in found[:limit]]
    truncated = len(found) > limit

    def render() -> RenderableType:
        if not rows:
            return "no requests"
        # With --controller the controller column would repeat one value: narrower without it.
        columns = [column for column in LIST_COLUMNS if not (controller and column == "controller")]
        cells = (
            [
                row["request_id"],
                *([] if controller else [row["controller_id"]]),
                row["type"],
                row["status"],
                short_time(row["created_at"]),
                short_time(row["due_at"]),
                row["flags"],
            ]
            for row in rows
        )
        return table(columns, cells)

    emit(state, {"requests": rows, "truncated": truncated}, render)
    if truncated:
        note(state, f"showing the first {limit}; raise --limit or narrow with --controller/--status")


def _filtered(controller: str | None, status: Status | None, route: str | None, overdue: bool):
    if route is None:
        found = queries.list_requests(controller_id=controller, status=status)
    else:
        ids = [
            c.controller_id
            for c in queries.list_controllers()
            if c.delivery == route and controller in (None, c.controller_id)
        ]
        found = chain.from_iterable(queries.controller_requests(cid, status) for cid in ids)
    if overdue:
        now = clock.now()
        found = (item for item in found if deadline_state.is_overdue(item.status, item.due_at, now))
    return found


@app.command("show")
def show_request(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help="The request id (dsr_...).")],
    reveal: Annotated[
        bool,
        typer.Option("--reveal", help="Also show the subject's email, name and details; recorded in the audit trail."),
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """One request's skeleton and audit trail; personal fields only with --reveal."""
    state = use(ctx, json_output)
    try:
        item = submissions.load_request(request_id)
    except NotFound:
        raise NotFound(f"no request {request_id} (unknown, or past its retention time)") from None
    personal = None
    if reveal:
        personal = queries.personal_fields(item)
        if any(personal.values()):
            # Written before anything is shown: if the audit write fails, nothing is revealed.
            viewed = audit.event(item.pk, action="personal_data_viewed", actor=state.operator)
            viewed.save(condition=AuditEvent.sk.does_not_exist())
    trail = [_event(event) for event in queries.audit_trail(item)]
    data: dict = {"request": queries.skeleton(item), "audit": trail}
    if personal is not None:
        data["personal"] = personal
    emit(state, data, lambda: _render_show(data))


def _event(event: AuditEvent) -> dict:
    return {
        "at": clock.isoformat(event.at),
        "action": event.action,
        "actor": event.actor,
        "operator": audit.operator_view(event),
        "from_status": event.from_status,
        "to_status": event.to_status,
        "cause": event.cause,
    }


def _render_show(data: dict) -> RenderableType:
    request = data["request"]
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    hold = request["legal_hold"]
    held = f"{hold['reason']} (since {hold['placed_at']}, until {hold['until'] or 'released'})" if hold else None
    for label, value in (
        ("request id", request["request_id"]),
        ("controller", request["controller_id"]),
        ("site", request["site"]),
        ("type", request["request_type"]),
        ("relationship", request["relationship"]),
        ("status", request["status"]),
        ("created", request["created_at"]),
        ("verified", request["verified_at"]),
        ("due", request["due_at"]),
        ("personal data purged", request["personal_purged_at"]),
        ("legal hold", held),
        ("flags", request["flags"]),
    ):
        facts.add_row(label, escape(cell_text(value)))
    parts: list = [facts, ""]
    personal = data.get("personal")
    if personal is None:
        parts.append("[dim]personal fields hidden; --reveal shows them and records that in the audit trail[/]")
    elif not any(personal.values()):
        parts.append("[dim]no personal fields left: purged[/]")
    else:
        reveal = Table.grid(padding=(0, 2))
        reveal.add_column(style="bold yellow")
        reveal.add_column()
        for field, value in personal.items():
            reveal.add_row(field, escape(cell_text(value)))
        parts.append(reveal)
    events = data["audit"]
    columns = ("at", "action", "actor", "from", "to", "cause")
    rows = ([e["at"], e["action"], who(e), e["from_status"], e["to_status"], e["cause"]] for e in events)
    parts += ["", table(columns, rows, title="audit trail")]
    return Group(*parts)


# ------------------------------------------------------------------ the operator queue


@app.command("resolve")
def resolve(
    ctx: typer.Context,
    request_id: Annotated[
        str, typer.Argument(help="A request in the operator queue (`requests list --route internal`).")
    ],
    approve: Annotated[
        bool, typer.Option("--approve", help="Carry it out: apply a rectification, close a complaint.")
    ] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Decline it; needs --reason.")] = False,
    extend_to: Annotated[
        str | None,
        typer.Option(
            "--extend-to",
            help="Push the due date instead (ISO 8601, UTC; a date alone means the end of that day), at "
            "most three months after verification; needs --reason.",
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why it is rejected or extended; the subject is told.")
    ] = None,
    note_text: Annotated[str | None, typer.Option("--note", help="A note for the subject with the answer.")] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Rectification: the corrected name (default: the one the subject stated)."),
    ] = None,
    locale: Annotated[
        str | None, typer.Option("--locale", help="Rectification: the corrected language (en, de, sl).")
    ] = None,
    field: Annotated[
        list[str] | None,
        typer.Option(
            "--field",
            help="Rectification: FIELD=VALUE, a field enabled connectors declare rectifiable (repeatable); "
            "they write it where the data lives, then the request completes.",
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Decide a request about the operator's own data; the subject is emailed the outcome.
    Reasons and notes are mailed, never stored: write them for the subject."""
    if approve + reject + (extend_to is not None) != 1:
        raise typer.BadParameter("choose one of --approve, --reject, --extend-to")
    fields: dict[str, str] = {}
    for given in field or []:
        key, equals, value = given.partition("=")
        if not equals or not key.strip():
            raise typer.BadParameter("give a correction as FIELD=VALUE", param_hint="--field")
        fields[key.strip()] = value
    state = connect_mail(use(ctx, json_output))
    if extend_to is not None:
        request = own_requests.extend(
            request_id, parse_period_end(extend_to, "extend_to"), reason=reason or "", actor=state.operator
        )
    else:
        decision = own_requests.APPROVE if approve else own_requests.REJECT
        if approve:
            _connect_executions_if_set(state)
        request = own_requests.resolve(
            request_id,
            decision,
            note=note_text,
            reason=reason,
            name=name,
            locale=locale,
            fields=fields or None,
            actor=state.operator,
        )
    view = queries.skeleton(request)
    emit(
        state,
        {"request": view},
        lambda: f"request {request_id} is {view['status']}; due {view['due_at']}; the subject is told by email",
    )


def _connect_executions_if_set(state: Any) -> None:
    """An approved rectification may start a connector run (its state machine, signing and sealing
    keys); a target without them still resolves everything else, and a run that needs them says so."""
    from rightsdesk_cli.errors import CliError
    from rightsdesk_cli.wiring import connect_executions

    try:
        connect_executions(state)
    except CliError:
        pass


# ------------------------------------------------------------------ a removed controller's requests


@app.command("answer")
def answer(
    ctx: typer.Context,
    request_id: Annotated[
        str, typer.Argument(help="A request of a removed controller (`requests list --controller ID`).")
    ],
    status: Annotated[
        str,
        typer.Option("--status", help="acknowledged, in_progress, completed or rejected (as a controller reports it)."),
    ],
    reason: Annotated[str | None, typer.Option("--reason", help="Shown to the subject; required to reject.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Answer, in place of a removed controller, one of its open requests; the subject is told by
    email while their address is still held. Other controllers answer their own requests."""
    from rightsdesk.routing import takeover

    state = connect_mail(use(ctx, json_output))
    request = takeover.answer(request_id, status, reason=reason, actor=state.operator)
    view = queries.skeleton(request)
    emit(state, {"request": view}, lambda: f"request {request_id} is {view['status']}; due {view['due_at']}")
