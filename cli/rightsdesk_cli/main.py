"""The `rightsdesk` command: root options, then one command group per module.

A new group is a module with its own `app = typer.Typer(...)`, added below with `add_typer`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from rightsdesk_cli import controllers, requests
from rightsdesk_cli.context import Context
from rightsdesk_cli.errors import RootGroup

app = typer.Typer(
    cls=RootGroup,
    name="rightsdesk",
    help="Operate rightsdesk: subjects' requests, controllers, retention. Real AWS by default, or --local.",
    no_args_is_help=True,
    add_completion=False,
    # Tracebacks may print local variables holding personal data; errors are one line (errors.py).
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    local: Annotated[
        bool, typer.Option("--local", help="Use the local run (`make run`): moto and the dev gateway.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
    stack: Annotated[
        str | None,
        typer.Option("--stack", envvar="RIGHTSDESK_STACK", help="Deployed stack; its RightsTableName output is used."),
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="AWS region of the stack (default: your profile's).")
    ] = None,
) -> None:
    if local and stack:
        raise typer.BadParameter("choose --local or --stack, not both", param_hint="--local/--stack")
    ctx.obj = Context(local=local, json=json_output, stack=stack, region=region)


app.add_typer(requests.app, name="requests")
app.add_typer(controllers.app, name="controllers")

from rightsdesk_cli import holds, retention  # noqa: E402 - kept apart so each group's lines stay its own

app.add_typer(retention.app, name="retention")
app.add_typer(holds.app, name="hold")

from rightsdesk_cli import breach, contacts, policy  # noqa: E402 - kept apart so each group's lines stay its own

app.add_typer(breach.app, name="breach")
app.add_typer(policy.app, name="policy")
app.add_typer(contacts.app, name="contacts")

from rightsdesk_cli import consents, newsletter, report  # noqa: E402 - kept apart so each group's lines stay its own

app.add_typer(consents.app, name="consents")
app.add_typer(newsletter.app, name="newsletter")
app.add_typer(report.app, name="report")

from rightsdesk_cli import dlq  # noqa: E402 - kept apart so each group's lines stay its own

app.add_typer(dlq.app, name="dlq")

from rightsdesk_cli import connectors  # noqa: E402 - kept apart so each group's lines stay its own

app.add_typer(connectors.app, name="connectors")

from rightsdesk_cli import accounts  # noqa: E402 - kept apart so each group's lines stay its own

app.add_typer(accounts.app, name="accounts")
app.add_typer(accounts.lifecycle_app, name="lifecycle")
from rightsdesk_cli import executions  # noqa: E402 - kept apart so each group's lines stay its own

executions.register(requests.app)  # requests execute | stop | receipt
