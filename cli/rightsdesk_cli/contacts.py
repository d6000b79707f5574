"""`rightsdesk contacts ...`: people who asked the platform for mail (policy notices and updates).

Minimal until the consent ledger owns how contacts arrive: add one, or import a CSV of
`email,locale,lists` (lists separated by `;`). Addresses are never printed back.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from rightsdesk.audience import contacts
from rightsdesk.kernel.errors import InvalidInput
from rightsdesk.platform import hashing
from rightsdesk_cli.context import use
from rightsdesk_cli.output import JsonFlag, counted, emit
from rightsdesk_cli.wiring import connect_mail

app = typer.Typer(
    help="Contacts on the mailing lists (policy_notices, policy_updates, newsletter, marketing).", no_args_is_help=True
)


@app.command("add")
def add(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The contact's address.")],
    lists: Annotated[list[str], typer.Option("--list", help="A list to put the contact on (repeat for more).")],
    locale: Annotated[str, typer.Option("--locale", help="Language of the mail: en, de or sl.")] = "en",
    json_output: JsonFlag = False,
) -> None:
    """Add a contact (or update its language) and put it on lists."""
    state = connect_mail(use(ctx, json_output), hash_key=True)
    contacts.subscribe(email, lists, locale=locale, actor=state.operator)
    emit(state, {"added": 1, "lists": sorted(set(lists))}, lambda: f"contact added to {', '.join(sorted(set(lists)))}")


@app.command("import")
def import_csv(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV: email,locale,lists")],
    json_output: JsonFlag = False,
) -> None:
    """Add every contact of a CSV file (header row `email,locale,lists`; lists separated by `;`)."""
    state = connect_mail(use(ctx, json_output), hash_key=True)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"email", "lists"} <= set(rows[0]):
        raise InvalidInput(
            "the CSV needs the columns email and lists (and optionally locale)", fields={"csv": "invalid_format"}
        )
    rejected: list[int] = []
    with Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        console=state.console,
        transient=True,
        disable=state.json or not state.console.is_terminal,
    ) as bar:
        task = bar.add_task("contacts", total=len(rows))
        for number, row in enumerate(rows, start=2):  # line numbers as an editor shows them
            names = [name.strip() for name in (row.get("lists") or "").split(";") if name.strip()]
            try:
                contacts.subscribe(
                    row.get("email") or "", names, locale=(row.get("locale") or "en").strip(), actor=state.operator
                )
            except InvalidInput:
                rejected.append(number)
            bar.advance(task)
    data = {"added": len(rows) - len(rejected), "rejected_lines": rejected}
    emit(
        state,
        data,
        lambda: (
            f"{counted(data['added'], 'contact', 'contacts')} added"
            + (f"; lines not valid: {', '.join(map(str, rejected))}" if rejected else "")
        ),
    )
    if rejected:
        raise typer.Exit(1)


@app.command("lift-restriction")
def lift_restriction(
    ctx: typer.Context,
    email: Annotated[str, typer.Option("--email", help="The subject's address (found by its keyed hash).")],
    objection: Annotated[bool, typer.Option("--objection", help="Lift an objection instead of a restriction.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Lift a subject's restriction of processing (or objection): optional lists reach them again.
    Tell the subject before you do (GDPR Art. 18(3))."""
    state = connect_mail(use(ctx, json_output), hash_key=True)
    kind = contacts.OBJECTION if objection else contacts.RESTRICTION
    lifted = contacts.lift(hashing.email_hash(email), kind, actor=state.operator)
    emit(state, {"lifted": lifted, "kind": kind}, lambda: f"{kind} lifted" if lifted else f"no {kind} to lift")
    if not lifted:
        raise typer.Exit(1)
