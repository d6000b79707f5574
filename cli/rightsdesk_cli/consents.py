"""`rightsdesk consents ...`: the consent ledger of one subject (rightsdesk.audience.consents).

The subject is named by address on the command line and found by its keyed hash; the address is
never printed back, and the ledger holds none.
"""

from __future__ import annotations

from typing import Annotated

import typer

from rightsdesk.audience import consents, contacts
from rightsdesk.kernel.rights import Purpose
from rightsdesk.platform import hashing
from rightsdesk.store import audit
from rightsdesk.store.items.audience import ContactItem
from rightsdesk_cli.context import use
from rightsdesk_cli.output import JsonFlag, emit, emit_history, table
from rightsdesk_cli.wiring import connect_mail

app = typer.Typer(
    help="The consent ledger: what each subject agreed to, and withdrew, when and from where.", no_args_is_help=True
)

EmailOption = Annotated[str, typer.Option("--email", help="The subject's address (found by its keyed hash).")]
SUBJECT_KEY_CHARS = 12  # as `breach status` shows a subject: enough to tell apart, not the whole key
PurposeOption = Annotated[list[Purpose], typer.Option("--purpose", help="A purpose (repeat for more).")]


@app.command("show")
def show(ctx: typer.Context, email: EmailOption, json_output: JsonFlag = False) -> None:
    """Every purpose the subject granted or withdrew, with times, sources and history."""
    state = connect_mail(use(ctx, json_output), hash_key=True)
    ledger = [consents.view(item) for item in consents.ledger(hashing.email_hash(email))]

    def render():
        if not ledger:
            return "no consent recorded for this subject"
        rows = (
            [
                c["purpose"],
                c["state"],
                c["granted_at"],
                c["granted_source"],
                c["withdrawn_at"],
                c["withdrawn_source"],
                len(c["history"]),
            ]
            for c in ledger
        )
        return table(("purpose", "state", "granted", "granted from", "withdrawn", "withdrawn from", "changes"), rows)

    emit(state, {"consents": ledger}, render)


@app.command("history")
def history(
    ctx: typer.Context,
    email: EmailOption,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="Events to show at most.")] = 50,
    json_output: JsonFlag = False,
) -> None:
    """The subject's contact audit trail, newest first: grants recorded by operators, list joins and
    leaves, conflicts with a privacy signal, flags. The subject is shown by its keyed hash's start."""
    state = connect_mail(use(ctx, json_output), hash_key=True)
    subject_hash = hashing.email_hash(email)
    events = audit.latest(ContactItem.key(subject_hash), limit)
    emit_history(state, ("subject", subject_hash[:SUBJECT_KEY_CHARS]), events, ("cause",))


@app.command("grant")
def grant(
    ctx: typer.Context,
    email: EmailOption,
    purposes: PurposeOption,
    source: Annotated[
        str, typer.Option("--source", help="Where it was given, e.g. signup-form or a ticket id (no personal data).")
    ],
    json_output: JsonFlag = False,
) -> None:
    """Record consent given outside rightsdesk, naming you on its audit trail. Joining a list
    (`contacts add`) records it too."""
    state = connect_mail(use(ctx, json_output), hash_key=True)
    granted = consents.grant_by(
        hashing.email_hash(email), [p.value for p in purposes], source=source, actor=state.operator
    )
    emit(state, {"granted": granted}, lambda: f"granted: {', '.join(granted)}")


@app.command("withdraw")
def withdraw(
    ctx: typer.Context,
    email: EmailOption,
    purposes: PurposeOption,
    source: Annotated[
        str, typer.Option("--source", help="Where it was withdrawn, e.g. a ticket id (no personal data).")
    ],
    json_output: JsonFlag = False,
) -> None:
    """Withdraw consent now (e.g. told by phone): the subject leaves the lists those purposes feed."""
    state = connect_mail(use(ctx, json_output), hash_key=True)
    left = contacts.withdraw_consent(
        hashing.email_hash(email), [p.value for p in purposes], source=source, actor=state.operator
    )
    emit(
        state,
        {"withdrawn": [p.value for p in purposes], "lists_left": left},
        lambda: f"withdrawn: {', '.join(p.value for p in purposes)}" + (f"; left {', '.join(left)}" if left else ""),
    )
