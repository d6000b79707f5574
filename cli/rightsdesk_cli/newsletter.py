"""`rightsdesk newsletter send`: one issue of an optional list of the operator's own (newsletter,
marketing), queued to every member the list may still reach (rightsdesk.audience.newsletter);
`rightsdesk newsletter history`: the sends on the list's audit trail."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from rightsdesk.audience import newsletter
from rightsdesk_cli.context import use
from rightsdesk_cli.output import JsonFlag, emit, emit_history
from rightsdesk_cli.wiring import connect_mail

app = typer.Typer(help="The operator's own optional lists: send an issue, see who sent which.", no_args_is_help=True)


@app.command("send")
def send(
    ctx: typer.Context,
    issue: Annotated[
        str, typer.Option("--issue", help="A name for this issue, e.g. 2026-11; sending it again finishes it.")
    ],
    subject: Annotated[str, typer.Option("--subject", help="The subject line.")],
    body_file: Annotated[
        Path,
        typer.Option(
            "--body-file", exists=True, dir_okay=False, readable=True, help="Plain text; blank lines part paragraphs."
        ),
    ],
    list_name: Annotated[str, typer.Option("--list", help="newsletter or marketing.")] = "newsletter",
    json_output: JsonFlag = False,
) -> None:
    """Queue the issue to every member who has not withdrawn consent, restricted or objected."""
    state = connect_mail(use(ctx, json_output))
    operator = state.operator  # who, before anything is stored or queued: nothing goes out unattributed
    with Progress(
        TextColumn("queueing"),
        BarColumn(),
        MofNCompleteColumn(),
        console=state.console,
        transient=True,
        disable=state.json,
    ) as bar:
        task = bar.add_task("mails", total=None)
        sent = newsletter.send(
            newsletter.Issue(
                issue=issue, subject=subject, body=body_file.read_text(encoding="utf-8"), list_name=list_name
            ),
            actor=operator,
            progress=lambda n: bar.advance(task, n),
        )
    data = {"issue": issue, "list": list_name, "queued": sent.queued, "skipped": sent.skipped}
    emit(
        state,
        data,
        lambda: (
            f"{sent.queued} mails queued; {sent.skipped} members skipped (withdrawn, restricted, "
            "objected or suppressed)"
        ),
    )


@app.command("history")
def history(
    ctx: typer.Context,
    list_name: Annotated[str, typer.Option("--list", help="newsletter or marketing.")] = "newsletter",
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="Events to show at most.")] = 50,
    json_output: JsonFlag = False,
) -> None:
    """The issues sent to the list, newest first: who sent which issue, how many were queued and skipped."""
    state = use(ctx, json_output)
    emit_history(state, ("list", list_name), newsletter.history(list_name, limit), ("cause",))
