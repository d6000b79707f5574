"""`rightsdesk hold ...`: legal holds that keep a request past its retention time until released."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from rightsdesk.retention import holds
from rightsdesk.store import queries
from rightsdesk_cli.context import use
from rightsdesk_cli.output import JsonFlag, emit
from rightsdesk_cli.retention import DATE_FORMATS, utc

app = typer.Typer(help="Legal holds: keep a request and its audit trail until released.", no_args_is_help=True)

RequestOption = Annotated[str, typer.Option("--request", help="The request id (dsr_...).")]


@app.command("place")
def place(
    ctx: typer.Context,
    request_id: RequestOption,
    reason: Annotated[str, typer.Option("--reason", help="Why (a case or ticket reference; no personal data).")],
    until: Annotated[
        datetime | None,
        typer.Option(
            "--until", formats=DATE_FORMATS, help="When the hold is expected to end (UTC); it ends only by release."
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Stop TTL and the sweeper from deleting a request, even past its time."""
    state = use(ctx, json_output)
    if not reason.strip():
        raise typer.BadParameter("a legal hold needs a reason", param_hint="--reason")
    request = holds.place(request_id, reason, utc(until), actor=state.operator)
    request.refresh(consistent_read=True)
    view = queries.skeleton(request)
    data = {"request_id": request_id, "legal_hold": view["legal_hold"]}
    emit(state, data, lambda: f"request {request_id} is under a legal hold since {view['legal_hold']['placed_at']}")


@app.command("release")
def release(ctx: typer.Context, request_id: RequestOption, json_output: JsonFlag = False) -> None:
    """End a hold: the retention rules apply again (a request past its time goes at the next sweep)."""
    state = use(ctx, json_output)
    request = holds.release(request_id, actor=state.operator)
    request.refresh(consistent_read=True)
    data = {
        "request_id": request_id,
        "legal_hold": None,
        "retention_rule": request.retention_rule,
        "retention_due_at": int(request.retention_due_at) if request.retention_due_at is not None else None,
        "expires_at": int(request.expires_at) if request.expires_at is not None else None,
    }
    emit(state, data, lambda: f"request {request_id} released; rule {request.retention_rule} applies again")
